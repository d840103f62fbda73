"""`k8s-monitor backup`: an online backup of the database now, then pruning of old backups."""

from __future__ import annotations

import argparse
import json
import sys

from shared.cli import cli_settings
from shared.core.formats import format_bytes
from shared.domain.trigger import Trigger
from shared.entry.backup import backup_once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor backup`."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Back up now; exit 0 when done or skipped (another backup was running), 1 when it failed."""
    settings = cli_settings()
    body, _ = backup_once(settings, Trigger("cli"))
    if args.json:
        print(json.dumps(body, indent=2))
    elif body["status"] == "ok":
        removed = f"; removed {len(body['removed'])} old backup(s)" if body["removed"] else ""
        print(f"backup {body['path']}: {format_bytes(body['size_bytes'])} in {body['duration_seconds']:.2f}s, "
              f"sha256 {body['sha256']}{removed}")
    else:
        print(f"k8s-monitor backup: {body['status']}: {body.get('error', '')}", file=sys.stderr)
    return 0 if body["status"] in ("ok", "skipped") else 1
