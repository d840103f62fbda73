"""Logging for functions and the CLI: one JSON object per line on stdout, or text for people.

The run id, event id and function name travel in context variables, so every line logged while a
run is under way carries them without passing them around. Secrets are masked at the formatter,
the last place a line passes before it leaves the process.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})
_secrets: list[str] = []

JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(module)s %(funcName)s %(lineno)d"


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (webhook URLs, passwords, tokens) so no log line shows them."""
    for value in values:
        if value and len(value) >= 4 and value not in _secrets:
            _secrets.append(value)


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "[REDACTED]")
    return text


@contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Add fields (run_id, event_id, function_name) to every line logged inside the block."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            setattr(record, key, value)
        return True


class _JsonLineFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _context.get().items())
        line = super().format(record)
        return redact(f"{line} [{extra}]" if extra else line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send every logger's records to stdout in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter())
    if fmt == "text":
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_JsonLineFormatter(
            JSON_FIELDS,
            rename_fields={"levelname": "level", "name": "logger", "funcName": "function",
                           "lineno": "line", "exc_info": "exception"},
            timestamp=True,
        ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
