"""`k8s-monitor backups`: the backups in BACKUP_DIR, newest first, with kind, age, size and checksum state.

Both kinds are listed: SQLite backups (`.db.gz`) and PostgreSQL archives (`.pgdump`), so a directory
that served both backends shows everything it holds.
"""

from __future__ import annotations

import argparse
import json
import time

from shared.cli import cli_settings
from shared.core.formats import format_bytes, format_duration, utc_second
from shared.ops.backup import list_backups

CHECKSUM_WORDS = {"ok": "verified", "mismatch": "DAMAGED (checksum mismatch)", "missing": "no checksum file",
                  "unchecked": "not checked"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor backups`."""
    parser.add_argument("--no-verify", action="store_true", help="do not read the files to verify their checksums")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the backups, newest first; exit code 0, also when there are none."""
    settings = cli_settings()
    backups = list_backups(settings.backup_dir, verify=not args.no_verify)
    now = time.time()
    if args.json:
        print(json.dumps([{"file": b.name, "path": str(b.path), "created_at": b.created_at,
                           "kind": b.kind, "size_bytes": b.size_bytes, "age_seconds": round(now - b.created_at),
                           "checksum": b.checksum} for b in backups], indent=2))
        return 0
    if not backups:
        print(f"No backups in {settings.backup_dir} (BACKUP_DIR); `k8s-monitor backup` makes one.")
        return 0
    rows = [("BACKUP", "KIND", "TAKEN (UTC)", "AGE", "SIZE", "CHECKSUM")]
    rows += [(b.name, b.kind, utc_second(b.created_at).removesuffix(" UTC"), format_duration(now - b.created_at),
              format_bytes(b.size_bytes), CHECKSUM_WORDS[b.checksum]) for b in backups]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0

