"""`k8s-monitor backups`: the backups in BACKUP_DIR, newest first, with age, size and checksum state."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from shared.cli import cli_settings
from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS
from shared.domain.rightsizing import format_bytes
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
                           "size_bytes": b.size_bytes, "age_seconds": round(now - b.created_at),
                           "checksum": b.checksum} for b in backups], indent=2))
        return 0
    if not backups:
        print(f"No backups in {settings.backup_dir} (BACKUP_DIR); `k8s-monitor backup` makes one.")
        return 0
    rows = [("BACKUP", "TAKEN (UTC)", "AGE", "SIZE", "CHECKSUM")]
    rows += [(b.name, datetime.fromtimestamp(b.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
              format_age(now - b.created_at), format_bytes(b.size_bytes), CHECKSUM_WORDS[b.checksum]) for b in backups]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def format_age(seconds: float) -> str:
    """An age for the backups table: minutes below an hour, then hours, then days (one decimal)."""
    if seconds < HOUR_SECONDS:
        return f"{max(0, seconds) // 60:.0f}m"
    if seconds < DAY_SECONDS:
        return f"{seconds / HOUR_SECONDS:.1f}h"
    return f"{seconds / DAY_SECONDS:.1f}d"
