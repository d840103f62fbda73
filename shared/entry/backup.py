"""The backup function's work behind its HTTP edge: dedupe the event, back up, choose the answer.

PingSource retries only on 404/413/425/429/502/503/504 and network errors: a failure worth retrying
(the database busy) answers 503 and releases the event claim; a permanent one (no space left, a
damaged database) answers 500 with the reason. A redelivered event id answers `duplicate` and
backs nothing up (503 `running` while its first delivery is still at work: that one may yet fail);
a request while another backup runs answers `skipped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.core.logs import log_context
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.delivery import answer_headers, first_delivery, redelivery_answer, settle_delivery
from shared.entry.http import Answer, http_function, json_answer
from shared.entry.triggers import PING_EVENT_TYPE, BadRequest, parse_http_trigger
from shared.ops.backup import BackupOutcome, run_backup
from shared.store.idempotency import Claim

FUNCTION = "backup"
ACCEPTED_EVENT_TYPES = frozenset({PING_EVENT_TYPE})


@http_function(FUNCTION)
def backup(request: Any, settings: Settings) -> Answer:
    """A CloudEvent or plain POST in; the backup as JSON, non-2xx when it failed."""
    trigger = parse_http_trigger(request, ACCEPTED_EVENT_TYPES, settings.max_body_bytes)
    if trigger.data:
        raise BadRequest(f"backup takes no parameters; unknown field(s): {', '.join(sorted(trigger.data))}")
    body, status = backup_once(settings, trigger)
    return json_answer(body, status, answer_headers(body))


def backup_once(settings: Settings, trigger: Trigger, clock: Callable[[], float] = time.time) -> tuple[dict, int]:
    """Back up once for `trigger` unless its event was already handled."""
    with log_context(event_id=trigger.event_id):
        claim = first_delivery(settings, FUNCTION, trigger, clock())
        if claim is not Claim.TAKEN:
            return redelivery_answer(trigger, claim)
        outcome = run_backup(settings, clock)
        settle_delivery(settings, FUNCTION, trigger, outcome.status, outcome.retriable)
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
