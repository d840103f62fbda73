"""`k8s-monitor serve`: every function in one process with an in-process schedule, for users without Knative.

Paths: `/health`, `/health/liveness`, `/health/readiness`, `/metrics` (health), `/collect`,
`/backup`, `/alerts` (alert_notify) and `/report`, each served by the same entry-layer handler the
Knative functions call, with the settings this command read once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from shared.core.settings import Settings

# mount path -> (entry module, handler): health answers at the root, with its /health... routes.
MOUNTS = {
    "": ("shared.entry.health", "health"),
    "/collect": ("shared.entry.collect", "collect"),
    "/backup": ("shared.entry.backup", "backup"),
    "/alerts": ("shared.entry.alert_notify", "alert_notify"),
    "/report": ("shared.entry.report", "report"),
}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor serve`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--no-schedule", action="store_true", help="serve only; no scheduled collections or backups")
    parser.add_argument("--backup-hour", type=int, default=2, choices=range(24), metavar="HOUR",
                        help="UTC hour of the daily backup (default 2)")


def function_app(name: str, handler: Any, settings: Settings) -> flask.Flask:
    """A Flask app answering every path and method with `handler`, as functions-framework serves a target."""
    import flask

    from shared.entry.http import use_settings

    app = flask.Flask(name)
    use_settings(app, settings)

    def view(path: str = "") -> Any:
        return handler(flask.request)

    app.add_url_rule("/", "function", view, methods=ALL_METHODS)
    app.add_url_rule("/<path:path>", "function", view, methods=ALL_METHODS)
    return app


def build_app(settings: Settings) -> DispatcherMiddleware:
    """One WSGI app: health at the root, the other functions under their mount paths."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    apps = {mount: function_app(name, getattr(importlib.import_module(module), name), settings)
            for mount, (module, name) in MOUNTS.items()}
    root = apps.pop("")
    return DispatcherMiddleware(root, apps)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, with the schedule unless `--no-schedule`; exit code 0."""
    from werkzeug.serving import run_simple

    from shared.cli import cli_settings
    from shared.entry.schedule import Scheduler

    settings = cli_settings()
    app = build_app(settings)
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
