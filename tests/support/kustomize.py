"""Every kustomization of the repository, built by the real `kubectl kustomize` (kustomize v5).

`kustomization_dirs()` finds them by their file name, so a new overlay is built and checked by the
tests without anyone listing it; `build()` runs `kubectl kustomize DIR` once per directory and
returns the objects it prints, or raises with kubectl's own message.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# The names kustomize looks for in a directory.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Not the product's: the tests' own fixtures, and what builds and users keep locally (hidden folders
# such as .venv and .git are skipped everywhere).
_TOP_LEVEL_SKIPPED = frozenset({"tests", "data", "test-artifacts", "build", "dist"})


class KustomizeError(RuntimeError):
    """`kubectl kustomize` refused a directory (its message says why) or kubectl is missing."""


def kustomization_dirs(root: Path = REPO) -> list[Path]:
    """Every directory under `root` holding a kustomization, hidden folders and tests/ left out."""
    found = []
    for directory, subdirs, files in os.walk(root):
        at_top = Path(directory) == root
        subdirs[:] = [d for d in subdirs if not (d.startswith(".") or d.endswith(".egg-info") or d == "__pycache__"
                                                 or (at_top and d in _TOP_LEVEL_SKIPPED))]
        if any(name in files for name in KUSTOMIZATION_FILES):
            found.append(Path(directory))
    return sorted(found)


def relative(directory: Path) -> str:
    """`directory` as the README writes it: relative to the repository root, with a trailing slash."""
    resolved = directory.resolve()
    return (resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else str(resolved)) + "/"


@functools.cache
def build(directory: Path) -> tuple[dict[str, Any], ...]:
    """What `kubectl kustomize directory` prints, as objects (the same for `kubectl apply -k`)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KustomizeError("kubectl is not on PATH: the manifest tests build every kustomization with "
                             "`kubectl kustomize` (kubectl 1.27+, kustomize v5)")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {relative(directory)} failed:\n{result.stderr.strip()}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


def object_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what kustomize requires to be unique."""
    metadata = obj.get("metadata") or {}
    return obj.get("apiVersion", ""), obj.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", "")
