"""What every function shares at its HTTP edge: its settings, JSON answers, and errors with intent.

An unhandled exception in functions-framework becomes a bare 500 with a traceback, which Knative's
PingSource does not retry. Here every answer is chosen: 4xx for input the monitor refuses, 503 for
failures worth a retry, and a JSON body that says what happened without leaking secrets.

Settings belong to the app, not to a module: they are built from the environment at the app's first
request (once per process under functions-framework) and kept in the Flask app's config, so `serve`
and tests can hand an app its settings instead (`use_settings`).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shared.core.logs import configure_logging, log_context, redact, register_secrets
from shared.core.settings import ConfigError, Settings, load_settings
from shared.domain.errors import InvalidInput
from shared.entry.triggers import BadRequest
from shared.ops.metrics import observes_requests
from shared.store.connection import SchemaTooNew, StoreError

if TYPE_CHECKING:
    import flask

log = logging.getLogger(__name__)

Answer = tuple[str, int, dict[str, str]]
# What a handler may return: a JSON answer, a body of bytes (/metrics), or an empty body with a status.
AnyAnswer = Answer | tuple[bytes, int, dict[str, str]] | tuple[str, int]
Handler = Callable[["flask.Request", Settings], AnyAnswer]

SETTINGS_KEY = "K8S_MONITOR_SETTINGS"
_SETTINGS_LOCK = threading.Lock()


def use_settings(app: flask.Flask, settings: Settings) -> None:
    """Give `app` its settings (serve, tests): its handlers use them instead of reading the environment."""
    app.config[SETTINGS_KEY] = settings


def app_settings(app: flask.Flask) -> Settings:
    """The app's settings, read from the environment on first use; ConfigError names a bad variable.

    Logging is configured with them, and their secrets are registered for redaction, once.
    """
    settings = app.config.get(SETTINGS_KEY)
    if settings is None:
        with _SETTINGS_LOCK:
            settings = app.config.get(SETTINGS_KEY)
            if settings is None:
                settings = load_settings()
                configure_logging(settings.log_level, settings.log_format, cluster=settings.cluster_name)
                register_secrets(settings.secret_values())
                use_settings(app, settings)
    return settings


def _cluster_name() -> str | None:
    """CLUSTER_NAME of the app serving this request, for its metrics; None when the settings are bad."""
    import flask

    try:
        return app_settings(flask.current_app).cluster_name
    except ConfigError:
        return None


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """A JSON answer (with extra `headers`), secrets masked: errors quote URLs and paths that may carry them."""
    return redact(json.dumps(body, default=str)), status, {"Content-Type": "application/json", **(headers or {})}


def http_function(function_name: str, routes: Iterable[str] = ("/",)) -> Callable[[Handler], Callable[..., AnyAnswer]]:
    """Turn `handler(request, settings)` into the function's HTTP target `target(request)`.

    The app's settings are passed in; every error becomes an answer: InvalidInput a 400 (BadRequest
    its own 4xx), bad settings or a database whose schema is newer than this code a 500, an unusable
    database a 503, anything unexpected a JSON 500 (logged). Every request is counted and timed by
    route (`routes`: the paths the function serves; see shared/ops/metrics.py).
    """

    def decorate(handler: Handler) -> Callable[..., AnyAnswer]:
        @functools.wraps(handler)
        def target(request: flask.Request) -> AnyAnswer:
            import flask

            with log_context(function_name=function_name):
                try:
                    return handler(request, app_settings(flask.current_app))
                except ConfigError as exc:
                    configure_logging()
                    log.critical("%s: %s", function_name, exc)
                    return json_answer({"error": f"{function_name}: {exc}"}, 500)
                except InvalidInput as exc:
                    log.warning("bad request: %s", exc)
                    return json_answer({"error": str(exc)}, exc.status if isinstance(exc, BadRequest) else 400)
                except StoreError as exc:  # the message says what to do; a newer schema is no retry case
                    log.error("%s: %s", function_name, exc)
                    return json_answer({"error": str(exc)}, 500 if isinstance(exc, SchemaTooNew) else 503)
                except Exception as exc:  # the last resort: an answer with intent, never a traceback
                    log.exception("%s failed", function_name)
                    return json_answer({"error": redact(f"internal error: {type(exc).__name__}: {exc}")}, 500)

        return observes_requests(routes, _cluster_name)(target)

    return decorate
