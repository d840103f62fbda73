"""At-least-once delivery made safe: each CloudEvent (source, id) is acted on once per function.

The claim is a row inserted before the work starts, so a redelivery that arrives while the first
delivery is still running is also recognised, and told apart from one whose work is done: the first
delivery may still fail in a way worth a retry, so the sender must keep retrying (the caller answers
"come back later", not "done"). A transient failure releases the claim, so the sender's retry runs
the work again. A claim left `running` by a delivery that died (a killed pod
never settles its claim) goes stale and may be claimed again. Claims older than a day are pruned.
"""

from __future__ import annotations

import logging
from enum import Enum

from shared.store.connection import transaction
from shared.store.dialect import Connection

log = logging.getLogger(__name__)

KEEP_SECONDS = 86_400
STALE_RUNNING_SECONDS = 660
"""Age after which a `running` claim belongs to a delivery that is gone, not to one still at work.

Knative ends every request at its Service's `timeoutSeconds`, which is at most 600 s, so no live
delivery holds a claim longer; the extra minute covers clock skew between pods. A delivery killed
mid-way (OOM, node loss, a rollout) never settles its claim: without this, the sender's retries
would be told "still running" for a day, until the sender gives up, and the work (an alert!) would
never be done.
"""


class Claim(Enum):
    """What claiming an event found: the work is this delivery's, another's still at it, or done."""

    TAKEN = "taken"
    RUNNING = "running"
    DONE = "done"


def claim_event(conn: Connection, function: str, source: str, event_id: str, now: float) -> Claim:
    """TAKEN if this delivery may do the work of (source, id) for `function`; else RUNNING or DONE.

    It may when nobody claimed the event yet, or when the claim is still `running` after
    STALE_RUNNING_SECONDS (its delivery died). Taking over a stale claim is one conditional UPDATE,
    so of two retries racing for it only one wins. RUNNING: an earlier delivery is at work and may
    yet fail; DONE: the event ended with an outcome (`ok`, `failed`, ...) and is a duplicate.
    """
    with transaction(conn):
        conn.execute("DELETE FROM processed_events WHERE received_at < ?", (now - KEEP_SECONDS,))
        cursor = conn.execute(
            "INSERT OR IGNORE INTO processed_events (function, source, event_id, received_at, outcome)"
            " VALUES (?, ?, ?, ?, 'running')",
            (function, source, event_id, now),
        )
        if cursor.rowcount == 1:
            return Claim.TAKEN
        cursor = conn.execute(
            "UPDATE processed_events SET received_at = ? WHERE function = ? AND source = ? AND event_id = ?"
            " AND outcome = 'running' AND received_at < ?",
            (now, function, source, event_id, now - STALE_RUNNING_SECONDS),
        )
        taken_over = cursor.rowcount == 1
        row = None if taken_over else conn.execute(
            "SELECT outcome FROM processed_events WHERE function = ? AND source = ? AND event_id = ?",
            (function, source, event_id),
        ).fetchone()
    if taken_over:
        log.warning("%s: event %s from %s was claimed over %ds ago by a delivery that never finished; "
                    "handling it now", function, event_id, source, STALE_RUNNING_SECONDS)
        return Claim.TAKEN
    return Claim.RUNNING if row is not None and row[0] == "running" else Claim.DONE


def finish_event(conn: Connection, function: str, source: str, event_id: str, outcome: str) -> None:
    """Record how the event ended (`ok`, `partial`, `failed`, `skipped`)."""
    with transaction(conn):
        conn.execute(
            "UPDATE processed_events SET outcome = ? WHERE function = ? AND source = ? AND event_id = ?",
            (outcome, function, source, event_id),
        )


def release_event(conn: Connection, function: str, source: str, event_id: str) -> None:
    """Forget a claim after a transient failure, so the sender's retry is not a duplicate."""
    with transaction(conn):
        conn.execute(
            "DELETE FROM processed_events WHERE function = ? AND source = ? AND event_id = ?",
            (function, source, event_id),
        )
