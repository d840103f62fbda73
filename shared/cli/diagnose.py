"""`k8s-monitor diagnose`: check everything at once, print a short verdict, and pack the facts in one archive.

Attach the archive to an issue: secrets are masked in it. Run it where the monitor runs (in the
`collect` or `health` pod) to see that pod's permissions and memory; from a laptop the permission
check asks as your own kubeconfig user.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli import cli_settings
from shared.ops.diagnose.archive import write_archive
from shared.ops.diagnose.diagnosis import diagnose


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor diagnose`."""
    parser.add_argument("--output", "-o", type=Path, default=Path("."), metavar="DIR",
                        help="where to write k8s-monitor-diagnose-YYYYmmdd_HHMMSS.tar.gz (default: here)")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="how long each check may take (default 20)")
    parser.add_argument("--runs", type=int, default=20, metavar="N", help="how many of the latest runs to include")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every check is ok, 1 when one needs attention; the archive is written either way."""
    if args.timeout <= 0 or args.runs < 1:
        raise SystemExit("k8s-monitor diagnose: --timeout must be above 0 and --runs at least 1")
    diagnosis = diagnose(cli_settings(quiet=True), timeout_seconds=args.timeout, runs=args.runs)
    archive = write_archive(diagnosis, args.output)
    print(diagnosis.verdict())
    print(f"archive: {archive}")
    return 1 if diagnosis.problems else 0
