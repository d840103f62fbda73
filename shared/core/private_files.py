"""Private files for secrets a library wants as paths (requests takes certificates and keys only as files).

One folder per process, private to its user (0700, each file 0600), removed at interpreter exit.
A content is written once, so a long-running process that loads the same credentials for every
collection does not pile files up; a forked child makes a folder of its own.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path


class PrivateFiles:
    """The process's private folder, made when the first file is asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._owner = 0  # the pid that made the folder
        self._written: dict[str, str] = {}

    def holding(self, content: bytes) -> str:
        """The path of a file holding `content`."""
        digest = hashlib.sha256(content).hexdigest()
        with self._lock:
            folder = self._own_folder()
            if digest not in self._written:
                self._written[digest] = _write(folder, content)
            return self._written[digest]

    def replaced(self, name: str, content: bytes) -> str:
        """The path of the file `name`, now holding `content`: replaced in one step, so whoever opens it
        reads the old content or the new, whole."""
        with self._lock:
            target = self._own_folder() / name
            os.replace(_write(target.parent, content), target)
            return str(target)

    def _own_folder(self) -> Path:
        if self._folder is None or self._owner != os.getpid():
            self._folder, self._owner = Path(tempfile.mkdtemp(prefix="k8s-monitor-")), os.getpid()  # mode 0700
            self._written.clear()
            atexit.register(_remove, self._folder, self._owner)
        return self._folder


def _write(folder: Path, content: bytes) -> str:
    handle, name = tempfile.mkstemp(dir=folder, suffix=".pem")  # mode 0600
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    return name


def _remove(folder: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child inherits the handler, not the folder
        shutil.rmtree(folder, ignore_errors=True)


PRIVATE_FILES = PrivateFiles()
