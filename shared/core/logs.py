"""Logging for functions and the CLI: one JSON object per line on stdout, or text for people.

Every JSON line carries `timestamp, level, logger, message, module, function, line`, plus
`exception` when there is one, `cluster` (CLUSTER_NAME, once settings are read: a central log store
holds every cluster's monitor) and `run_id`, `event_id`, `function_name` when known. Those ids
travel in context variables, so every line logged while a run is under way carries them without
passing them around.

Secrets are masked at the formatter, the last place a line passes before it leaves the process:
the registered values themselves (webhook URLs, passwords, tokens), the path of a secret URL (the
secret part of a Slack webhook, which HTTP client errors quote without the host), any
`Bearer <token>`, and the password of any `scheme://user:password@host` URL. A secret is masked
in the message, the traceback and every extra field, before JSON escaping could change its bytes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO
from urllib.parse import urlsplit

from pythonjsonlogger.json import JsonFormatter

MASK = "[REDACTED]"
CONTEXT_FIELDS = ("cluster", "run_id", "event_id", "function_name")
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(module)s %(funcName)s %(lineno)d"
JSON_RENAMES = {"levelname": "level", "name": "logger", "funcName": "function", "lineno": "line",
                "exc_info": "exception"}
# Chatty libraries: their INFO lines (one per connection) drown the monitor's own.
QUIET_LOGGERS = ("urllib3", "werkzeug", "gunicorn.access")

_context: contextvars.ContextVar[Mapping[str, str | int]] = contextvars.ContextVar(
    "log_context", default=MappingProxyType({}))
_secrets: list[str] = []
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@"), rf"\1:{MASK}@"),
)
_MIN_SECRET_CHARS = 4
_MIN_SECRET_PATH_CHARS = 8


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (webhook URLs, passwords, tokens) so no log line shows them."""
    for value in values:
        for secret in (value, _url_secret_part(value)):
            if not secret or len(secret) < _MIN_SECRET_CHARS:
                continue
            # as is, as it reads inside JSON text, and inside a repr() (an exception quoting it with !r)
            for spelling in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]):
                if spelling not in _secrets:
                    _secrets.append(spelling)
    _secrets.sort(key=len, reverse=True)  # the whole URL before its path, so no fragment is left


def _url_secret_part(value: str | None) -> str | None:
    """The path and query of a URL secret: what stays secret when the host is public."""
    if not value or "://" not in value:
        return None
    parts = urlsplit(value)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return tail if len(tail) >= _MIN_SECRET_PATH_CHARS else None


def redact(text: str) -> str:
    """`text` with every registered secret, bearer token and URL password masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(item) for item in value]
    return value


@contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Add fields (run_id, event_id, function_name) to every line logged inside the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    """Copy the process's fields and the context fields onto the record (a field given with `extra=` wins)."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__()
        self._fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in {**self._fields, **_context.get()}.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _JsonLineFormatter(JsonFormatter):
    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        # Always six fractional digits (isoformat drops them at .000000), so shippers parse every line.
        log_data["timestamp"] = datetime.fromtimestamp(record.created, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%f+00:00")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {"timestamp": log_data.pop("timestamp"), **log_data}  # the time first, for people reading
        return {key: _redact_value(value) for key, value in ordered.items()}

    def format(self, record: logging.LogRecord) -> str:
        # Values are masked before serializing; objects turned into text by the JSON encoder
        # itself (an exception passed in `extra`) are masked here.
        return redact(super().format(record))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key))
        if ids:
            head, newline, rest = line.partition("\n")  # ids on the message line, before a traceback
            line = f"{head} [{ids}]{newline}{rest}"
        return redact(line)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None,
                      cluster: str | None = None) -> None:
    """Send every logger's records to `stream` (stdout) in the chosen format; idempotent.

    `cluster` (CLUSTER_NAME) goes on every line. Python warnings (an unverified TLS connection, a
    deprecation) are routed through logging too, so they come out as JSON lines instead of bare
    text on stderr.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(_ContextFilter({"cluster": cluster} if cluster else {}))
    if fmt == "text":
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_JsonLineFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp=True))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
