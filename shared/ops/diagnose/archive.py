"""The diagnose archive: `k8s-monitor-diagnose-YYYYmmdd_HHMMSS.tar.gz`, the verdict and every check's facts.

Every file is passed through the log redactor before it is written: the archive is meant to be
attached to an issue.
"""

from __future__ import annotations

import io
import json
import os
import platform
import tarfile
from pathlib import Path
from typing import Any

from shared.core.formats import file_stamp, iso_utc
from shared.core.logs import redact
from shared.ops.diagnose.diagnosis import Diagnosis

ARCHIVE_PREFIX = "k8s-monitor-diagnose-"


def write_archive(diagnosis: Diagnosis, directory: Path) -> Path:
    """`k8s-monitor-diagnose-YYYYmmdd_HHMMSS.tar.gz` (UTC) in `directory`, mode 0600; its path.

    One folder of the same name inside: `summary.txt` (the verdict), `settings.json` and one JSON
    file per check. Written under a temporary name and renamed, so a final name is always complete.
    """
    directory.mkdir(parents=True, exist_ok=True)
    taken = diagnosis.taken_at
    while (archive := directory / archive_name(taken)).exists():
        taken += 1
    folder = archive.name.removesuffix(".tar.gz")
    files = {
        "summary.txt": diagnosis.verdict() + "\n",
        "settings.json": _json({"version": diagnosis.version, "taken_at": iso_utc(diagnosis.taken_at),
                                "environment": _environment(), "settings": diagnosis.settings}),
        **{f"{name}.json": _json(section.as_dict()) for name, section in diagnosis.sections.items()},
    }
    partial = directory / f".{archive.name}.partial"
    try:
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as raw, \
                tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in files.items():
                data = redact(text).encode("utf-8")
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size, info.mtime, info.mode = len(data), int(diagnosis.taken_at), 0o600
                tar.addfile(info, io.BytesIO(data))
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive


def archive_name(at: float) -> str:
    """The archive's file name for a diagnosis taken at `at` (Unix seconds), its UTC time in the name."""
    return f"{ARCHIVE_PREFIX}{file_stamp(at)}.tar.gz"


def _environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "in_cluster": "KUBERNETES_SERVICE_HOST" in os.environ, "uid": os.getuid()}


def _json(body: Any) -> str:
    return json.dumps(body, indent=2, default=str) + "\n"
