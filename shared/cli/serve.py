"""`k8s-monitor serve`: every function in one process with an in-process schedule, for users without Knative.

Paths: `/health`, `/health/liveness`, `/health/readiness`, `/metrics` (health), `/collect`,
`/backup`, `/alerts` (alert_notify) and `/report`, each served by the same function code the
Knative Services run.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent.parent / "functions"
MOUNTS = {"/collect": "collect", "/backup": "backup", "/alerts": "alert_notify", "/report": "report"}

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor serve`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--no-schedule", action="store_true", help="serve only; no scheduled collections or backups")
    parser.add_argument("--backup-hour", type=int, default=2, choices=range(24), metavar="HOUR",
                        help="UTC hour of the daily backup (default 2)")


def build_app() -> DispatcherMiddleware:
    """One WSGI app: health at the root, the other functions under their mount paths."""
    from functions_framework import create_app
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    def load(name: str):  # type: ignore[no-untyped-def]
        app = create_app(target=name, source=str(FUNCTIONS_DIR / name / "main.py"))

        def at_mount_root(environ, start_response):  # type: ignore[no-untyped-def]
            environ["PATH_INFO"] = environ.get("PATH_INFO") or "/"  # `/collect` is the function's `/`
            return app(environ, start_response)

        return at_mount_root

    return DispatcherMiddleware(load("health"), {mount: load(name) for mount, name in MOUNTS.items()})


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, with the schedule unless `--no-schedule`; exit code 0."""
    from werkzeug.serving import run_simple

    from shared.cli import cli_settings
    from shared.entry.schedule import Scheduler

    settings = cli_settings()
    os.environ.setdefault("DATABASE_PATH", str(settings.database_path))  # the functions read the environment
    os.environ.setdefault("BACKUP_DIR", str(settings.backup_dir))
    app = build_app()
    scheduler = None if args.no_schedule else Scheduler(settings, args.backup_hour)
    if scheduler:
        scheduler.start()
    print(f"serving on http://{args.host}:{args.port} (health at /health, report at /report)", flush=True)
    try:
        run_simple(args.host, args.port, app, threaded=True)
    finally:
        if scheduler:
            scheduler.stop()
    return 0
