"""The kubeconfig files kubectl reads, merged as kubectl merges them: the one reader of kubeconfig YAML.

KUBECONFIG may list several files (`:`-separated); files that do not exist are skipped. Of the
clusters, users and contexts, the first file to define a name wins, and so does the first file
that sets current-context (client-go's merge rules). Each entry remembers the file it came from:
a relative path in it is relative to that file's folder. The credentials loader and the default
cluster name both read kubeconfigs through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}


class KubeconfigError(Exception):
    """A kubeconfig file could not be read or is not a kubeconfig; the message names the file."""


@dataclass(frozen=True)
class Entry:
    """One named cluster, user or context, and the file that defined it."""

    kind: str  # "cluster", "user" or "context"
    name: str
    fields: Mapping[str, Any]  # the entry's `cluster`, `user` or `context` mapping ({} when it is not one)
    source: Path  # absolute

    def path(self, value: str) -> Path:
        """A path the entry names, relative paths read from the folder of the file that named it."""
        return self.source.parent / Path(value).expanduser()

    def text(self, key: str) -> str | None:
        """The field `key` as text; None when it is unset or empty. A mapping or list there raises
        KubeconfigError naming the entry and the field."""
        value = self.fields.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise KubeconfigError(f"{self}: {key} must be text")
        return str(value)

    def __str__(self) -> str:
        """How an error names it: `user 'admin' in /home/me/.kube/config`."""
        return f"{self.kind} '{self.name}' in {self.source}"


@dataclass(frozen=True)
class Kubeconfig:
    """The merged view of the files of a KUBECONFIG value."""

    files: tuple[Path, ...]  # the files read, in order
    current_context: str | None
    clusters: Mapping[str, Entry]
    users: Mapping[str, Entry]
    contexts: Mapping[str, Entry]


def kubeconfig_files(path: Path | None) -> list[Path]:
    """The files a KUBECONFIG value names, in order; ~/.kube/config when it is unset."""
    if path is None:
        return [Path.home() / ".kube" / "config"]
    return [Path(part).expanduser() for part in str(path).split(os.pathsep) if part]


def read_kubeconfig(path: Path | None, skip_unreadable: bool = False) -> Kubeconfig:
    """Read and merge the files of `path` (a KUBECONFIG value; None: ~/.kube/config).

    A file that cannot be read or parsed raises KubeconfigError naming it, or with `skip_unreadable`
    is left out, as if it did not exist.
    """
    files: list[Path] = []
    current: str | None = None
    merged: dict[str, dict[str, Entry]] = {section: {} for section in SECTIONS}
    for file in kubeconfig_files(path):
        try:
            config = _read(file)
        except KubeconfigError:
            if skip_unreadable:
                continue
            raise
        if config is None:
            continue
        source = file.absolute()
        files.append(source)
        current = current or _text(config.get("current-context"))
        for section, body_key in SECTIONS.items():
            entries = merged[section]
            for item in config.get(section) or ():
                name = _text(item.get("name")) if isinstance(item, dict) else None
                if name is not None and name not in entries:
                    body = item.get(body_key)
                    entries[name] = Entry(body_key, name, body if isinstance(body, dict) else {}, source)
    return Kubeconfig(tuple(files), current, merged["clusters"], merged["users"], merged["contexts"])


def _read(file: Path) -> dict[str, Any] | None:
    """The file's mapping; None when it does not exist or is empty."""
    import yaml  # type: ignore[import-untyped]  # imported where a file is read: settings import this module

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"{file} is not valid YAML{where}") from None
    if config is None:
        return None
    if not isinstance(config, dict):
        raise KubeconfigError(f"{file} is not a kubeconfig (a mapping with clusters, users and contexts)")
    return config


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
