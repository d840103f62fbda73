"""What every function shares at its HTTP edge: start-up, JSON answers, and errors with intent.

An unhandled exception in functions-framework becomes a bare 500 with a traceback, which Knative's
PingSource does not retry. Here every answer is chosen: 4xx for bad input, 503 for failures worth
a retry, and a JSON body that says what happened without leaking secrets.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from shared.core.logs import configure_logging, log_context, redact, register_secrets
from shared.core.settings import ConfigError, Settings, load_settings
from shared.entry.triggers import BadRequest
from shared.ops.metrics import observes_requests
from shared.store.connection import SchemaTooNew, StoreError

log = logging.getLogger(__name__)

Answer = tuple[str, int, dict[str, str]]
# What a handler may return: a JSON answer, a body of bytes (/metrics), or an empty body with a status.
AnyAnswer = Answer | tuple[bytes, int, dict[str, str]] | tuple[str, int]


def start_function(name: str) -> Settings:
    """Read settings and configure logging for function `name`; exit with one clear line if invalid."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        configure_logging()
        log.critical("%s: %s", name, exc)
        raise SystemExit(f"{name}: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    register_secrets(secret_values(settings))
    return settings


def secret_values(settings: Settings) -> list[str | None]:
    """Every secret in the settings, in plain text, for log redaction."""
    secrets = [settings.slack_webhook_url, settings.webhook_url, settings.smtp_password,
               settings.alert_webhook_token, settings.prometheus_bearer_token]
    return [s.get_secret_value() if s is not None else None for s in secrets]


def json_answer(body: Any, status: int = 200) -> Answer:
    """A JSON answer, secrets masked: errors quote URLs and paths that may carry them."""
    return redact(json.dumps(body, default=str)), status, {"Content-Type": "application/json"}


def handles_errors(
    function_name: str, routes: Iterable[str] = ("/",)
) -> Callable[[Callable[..., AnyAnswer]], Callable[..., AnyAnswer]]:
    """Wrap a handler: BadRequest becomes its 4xx, an unusable database 503 (500 when its schema is
    newer than this code), anything unexpected a JSON 500 (logged).

    Every request is counted and timed by route (`routes`: the paths the function serves; see
    shared/ops/metrics.py), and `GET /metrics` answers this instance's HTTP metrics.
    """

    def decorate(handler: Callable[..., AnyAnswer]) -> Callable[..., AnyAnswer]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> AnyAnswer:
            with log_context(function_name=function_name):
                try:
                    return handler(*args, **kwargs)
                except BadRequest as exc:
                    log.warning("bad request: %s", exc)
                    return json_answer({"error": str(exc)}, exc.status)
                except StoreError as exc:  # the message says what to do; a newer schema is no retry case
                    log.error("%s: %s", function_name, exc)
                    return json_answer({"error": str(exc)}, 500 if isinstance(exc, SchemaTooNew) else 503)
                except Exception as exc:  # the last resort: an answer with intent, never a traceback
                    log.exception("%s failed", function_name)
                    return json_answer({"error": redact(f"internal error: {type(exc).__name__}: {exc}")}, 500)

        return observes_requests(routes)(wrapper)

    return decorate
