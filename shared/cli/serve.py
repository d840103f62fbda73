"""`k8s-monitor serve`: every function in one process with an in-process schedule, for users without Knative.

Paths: `/health`, `/health/liveness`, `/health/readiness`, `/metrics` (health), `/collect`,
`/backup`, `/alerts` (alert_notify) and `/report`, each served by the same entry-layer handler the
Knative functions call, with the settings this command read once.

It serves with gunicorn, as functions-framework does: one worker process with threads (SQLite
wants one writer, and the schedule runs in that worker), and a graceful stop on SIGTERM, so a
rollout lets a collection in progress finish instead of being killed after the grace period.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import flask
    from _typeshed.wsgi import WSGIApplication
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
    parser.add_argument("--threads", type=int, default=8, choices=range(1, 65), metavar="N",
                        help="requests served at once (default 8)")
    parser.add_argument("--graceful-seconds", type=int, default=25, choices=range(1, 3601), metavar="SECONDS",
                        help="on SIGTERM, how long a request or scheduled run in progress may take to finish "
                             "(default 25, within Kubernetes' 30 s grace period)")


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

    apps: dict[str, WSGIApplication] = {
        mount: function_app(name, getattr(importlib.import_module(module), name), settings)
        for mount, (module, name) in MOUNTS.items()}
    root = apps.pop("")
    return DispatcherMiddleware(root, apps)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, with the schedule unless `--no-schedule`; exit code 0."""
    from gunicorn.app.base import BaseApplication

    from shared.cli import cli_settings
    from shared.entry.schedule import Scheduler

    settings = cli_settings(server=True)
    app = build_app(settings)
    scheduler = None if args.no_schedule else Scheduler(settings, args.backup_hour)

    class Server(BaseApplication):
        """gunicorn serving `app` in one threaded worker, which also runs the schedule."""

        def load_config(self) -> None:
            self.cfg.set("bind", f"{_bracketed(args.host)}:{args.port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("timeout", 0)  # a collection may take minutes; COLLECT_BUDGET_SECONDS bounds it
            self.cfg.set("graceful_timeout", args.graceful_seconds)
            self.cfg.set("accesslog", None)
            self.cfg.set("logger_class", _gunicorn_logs())
            if scheduler:
                self.cfg.set("post_worker_init", lambda worker: scheduler.start())
                self.cfg.set("worker_exit", lambda server, worker: scheduler.stop())

        def load(self) -> Any:
            return app

    print(f"serving on http://{args.host}:{args.port} (health at /health, report at /report)", flush=True)
    Server().run()
    return 0


def _gunicorn_logs() -> type:
    """gunicorn's logger, sending its lines through ours (JSON, secrets masked) instead of its own format."""
    from gunicorn.glogging import Logger

    class GunicornLogs(Logger):
        def setup(self, cfg: Any) -> None:
            self.cfg = cfg
            self.error_log.propagate = True  # to the root logger that configure_logging set up
            self.error_log.setLevel(logging.INFO)

    return GunicornLogs


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets, as a bind address needs it; names and IPv4 addresses as given."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
