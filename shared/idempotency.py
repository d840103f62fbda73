"""At-least-once delivery made safe: each CloudEvent (source, id) is acted on once per function.

The claim is a row inserted before the work starts, so a redelivery that arrives while the first
delivery is still running is also recognised. A transient failure releases the claim, so the
sender's retry runs the work again. Claims older than a day are pruned.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.store import connect, transaction
from shared.triggers import Trigger

KEEP_SECONDS = 86_400


def claim_event(conn: sqlite3.Connection, function: str, source: str, event_id: str, now: float) -> bool:
    """True if this delivery is the first of (source, id) for `function`; False for a duplicate."""
    with transaction(conn):
        conn.execute("DELETE FROM processed_events WHERE received_at < ?", (now - KEEP_SECONDS,))
        cursor = conn.execute(
            "INSERT OR IGNORE INTO processed_events (function, source, event_id, received_at, outcome)"
            " VALUES (?, ?, ?, ?, 'running')",
            (function, source, event_id, now),
        )
        return cursor.rowcount == 1


def finish_event(conn: sqlite3.Connection, function: str, source: str, event_id: str, outcome: str) -> None:
    """Record how the event ended (`ok`, `partial`, `failed`, `skipped`)."""
    with transaction(conn):
        conn.execute(
            "UPDATE processed_events SET outcome = ? WHERE function = ? AND source = ? AND event_id = ?",
            (outcome, function, source, event_id),
        )


def release_event(conn: sqlite3.Connection, function: str, source: str, event_id: str) -> None:
    """Forget a claim after a transient failure, so the sender's retry is not a duplicate."""
    with transaction(conn):
        conn.execute(
            "DELETE FROM processed_events WHERE function = ? AND source = ? AND event_id = ?",
            (function, source, event_id),
        )


def first_delivery(database: Path, function: str, trigger: Trigger, now: float, create: bool = False) -> bool:
    """Claim the trigger's event for `function`: False for a redelivery. Triggers without an id pass.

    With `create` a missing database is made (collect makes it anyway); without, it is left alone
    (a backup of nothing must not make one) and the event passes: nothing was handled yet.
    """
    if not trigger.event_id or not (create or database.exists()):
        return True
    conn = connect(database)
    try:
        return claim_event(conn, function, trigger.event_source or "", trigger.event_id, now)
    finally:
        conn.close()


def settle_delivery(database: Path, function: str, trigger: Trigger, outcome: str, retriable: bool) -> None:
    """After the work: keep the claim with its outcome, or release it when a retry should run."""
    if not trigger.event_id or not database.exists():
        return
    conn = connect(database)
    try:
        if retriable:
            release_event(conn, function, trigger.event_source or "", trigger.event_id)
        else:
            finish_event(conn, function, trigger.event_source or "", trigger.event_id, outcome)
    finally:
        conn.close()


def duplicate_answer(trigger: Trigger) -> dict[str, str | None]:
    """What a function answers to a redelivered event (a 200: the sender must not retry)."""
    return {"status": "duplicate", "event_id": trigger.event_id, "event_source": trigger.event_source}
