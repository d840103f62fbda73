"""`k8s-monitor restore FILE`: verify a backup and swap it in as the database.

Stop the monitor's functions first (suspend the PingSources, or stop `k8s-monitor serve`): a database
another process has open is refused rather than replaced under it. On PostgreSQL the archive is loaded
into an empty database; `--force` drops and recreates the objects it holds in a database that is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.cli import cli_settings
from shared.core.database_url import PostgresTarget
from shared.core.formats import utc_second
from shared.ops.restore import DumpRestoreResult, RestoreError, restore_backup, restore_postgres_backup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor restore`."""
    parser.add_argument("file", type=Path,
                        help="the backup: a path, or a name in BACKUP_DIR (see `k8s-monitor backups`)")
    parser.add_argument("--force", action="store_true",
                        help="PostgreSQL: restore into a database that is not empty, dropping and recreating the "
                             "objects the backup holds (others stay); SQLite always keeps the replaced file aside")


def run(args: argparse.Namespace) -> int:
    """Restore the backup; exit 1 when it was refused (the database is left as it was)."""
    settings = cli_settings()
    try:
        if isinstance(settings.database, PostgresTarget):
            _print_dump_restore(restore_postgres_backup(settings, args.file, force=args.force))
            return 0
        result = restore_backup(settings, args.file)
    except RestoreError as exc:
        print(f"k8s-monitor restore: refused: {exc}", file=sys.stderr)
        return 1
    last = ("no runs" if result.last_run_at is None else
            "last run " + utc_second(result.last_run_at))
    print(f"restored {result.backup} into {result.database}: schema {result.schema_version}, "
          f"{result.runs} runs, {last}")
    if result.replaced:
        print(f"the replaced database is kept at {result.replaced}; delete it when you no longer need it")
    return 0


def _print_dump_restore(result: DumpRestoreResult) -> None:
    print(f"restored {result.backup} into {result.database}: {result.tables} tables")
    if result.objects_before:
        print(f"{len(result.objects_before)} objects were there before; those the backup holds were dropped and "
              f"recreated")
    print("the functions bring an older schema up to date on their next run (or run `k8s-monitor migrate`)")
