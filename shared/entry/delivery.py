"""Each CloudEvent delivery of a function acted on once: claim it before the work, settle it after.

The claims themselves live in the database (shared/store/idempotency.py); this is how collect and
backup use them for a Trigger.
"""

from __future__ import annotations

from pathlib import Path

from shared.domain.trigger import Trigger
from shared.store.connection import connect
from shared.store.idempotency import claim_event, finish_event, release_event


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
