"""The backup function's work behind its HTTP edge: dedupe the event, back up, choose the answer.

PingSource retries only on 404/413/425/429/502/503/504 and network errors: a failure worth retrying
(the database busy) answers 503 and releases the event claim; a permanent one (no space left, a
damaged database) answers 500 with the reason. A redelivered event id answers `duplicate` and
backs nothing up; a request while another backup runs answers `skipped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.backup import BackupOutcome, run_backup
from shared.config import Settings
from shared.idempotency import claim_event, finish_event, release_event
from shared.logs import log_context
from shared.store import connect
from shared.triggers import PING_EVENT_TYPE, BadRequest, Trigger, parse_http_trigger

FUNCTION = "backup"
ACCEPTED_EVENT_TYPES = frozenset({PING_EVENT_TYPE})


def backup_from_http(request: Any, settings: Settings) -> tuple[dict, int]:
    """A Flask request (CloudEvent or plain POST) in, the backup as JSON and its status code out."""
    trigger = parse_http_trigger(request, ACCEPTED_EVENT_TYPES, settings.max_body_bytes)
    if trigger.data:
        raise BadRequest(f"backup takes no parameters; unknown field(s): {', '.join(sorted(trigger.data))}")
    return backup_once(settings, trigger)


def backup_once(settings: Settings, trigger: Trigger, clock: Callable[[], float] = time.time) -> tuple[dict, int]:
    """Back up once for `trigger` unless its event was already handled."""
    event = (trigger.event_source or "", trigger.event_id) if trigger.event_id else None
    with log_context(event_id=trigger.event_id):
        if event and settings.database_path.exists():
            conn = connect(settings.database_path)
            try:
                if not claim_event(conn, FUNCTION, event[0], event[1], clock()):
                    return {"status": "duplicate", "event_id": event[1], "event_source": event[0]}, 200
            finally:
                conn.close()
        outcome = run_backup(settings, clock)
        if event and settings.database_path.exists():
            conn = connect(settings.database_path)
            try:
                if outcome.retriable:
                    release_event(conn, FUNCTION, *event)
                else:
                    finish_event(conn, FUNCTION, event[0], event[1], outcome.status)
            finally:
                conn.close()
    body = describe_outcome(outcome, settings)
    body["trigger"], body["event_id"] = trigger.kind, trigger.event_id
    if outcome.status != "failed":
        return body, 200
    return body, 503 if outcome.retriable else 500


def describe_outcome(outcome: BackupOutcome, settings: Settings) -> dict:
    """The JSON answer: the file, its size, how long it took and its checksum, or what went wrong."""
    body: dict[str, Any] = {"status": outcome.status}
    if outcome.backup:
        info = outcome.backup
        body.update(file=info.file, path=str(settings.backup_dir / info.file), size_bytes=info.size_bytes,
                    duration_seconds=round(info.duration_seconds, 3), sha256=info.sha256,
                    finished_at=info.finished_at, removed=outcome.removed)
    if outcome.error:
        body["error"] = outcome.error
    return body
