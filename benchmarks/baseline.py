"""Another commit's code beside this one, so a benchmark compares the two in one run, on one machine.

`checkout(rev)` puts the commit in a temporary git worktree and removes it afterwards; a benchmark
then runs itself as a child process with `--code DIR`, and `use_code` makes that child import the
library (and benchmarks/synthetic.py) from DIR instead of from this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The tree of `rev` in a temporary directory (a detached git worktree), removed on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "code"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], capture_output=True)
        shutil.rmtree(folder.parent, ignore_errors=True)


def use_code(code: str | None) -> None:
    """Import `shared` and `benchmarks` from the checkout `code` (None: this one) from now on."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("shared", "benchmarks")]:
        del sys.modules[name]  # this module's own package, imported from this checkout
    sys.path[:0] = [str(Path(code).resolve()) if code else str(REPO)]


def child_command(script: Path, code: Path, *args: str) -> list[str]:
    """The command that runs `script` (of this checkout) on the code of the checkout `code`."""
    return [sys.executable, str(script), "--code", str(code), *args]
