"""Each CloudEvent delivery of a function acted on once: claim it before the work, settle it after.

The claims themselves live in the database (shared/store/idempotency.py); this is how collect and
backup use them for a Trigger, and what they answer to a redelivery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.trigger import Trigger
from shared.store.connection import open_store, store_exists
from shared.store.idempotency import Claim, claim_event, finish_event, release_event

if TYPE_CHECKING:
    from shared.core.settings import Settings

RUNNING_STATUS = "running"
RUNNING_RETRY_AFTER_SECONDS = 30
"""The wait suggested to a sender whose redelivery arrives while the first delivery still runs.

Only a hint: PingSource and Alertmanager retry on their own schedule (a Broker honours it when its
retry-after feature is on). Half a minute is about what a collection takes on a large cluster.
"""


def first_delivery(settings: Settings, function: str, trigger: Trigger, now: float, create: bool = False) -> Claim:
    """Claim the trigger's event for `function`: TAKEN, or RUNNING / DONE for a redelivery.

    Triggers without an id are always TAKEN. With `create` a missing database is made (collect
    makes it anyway); without, it is left alone (a backup of nothing must not make one) and the
    event is TAKEN: nothing was handled yet.
    """
    if not trigger.event_id or not (create or store_exists(settings)):
        return Claim.TAKEN
    conn = open_store(settings)
    try:
        return claim_event(conn, function, trigger.event_source or "", trigger.event_id, now)
    finally:
        conn.close()


def settle_delivery(settings: Settings, function: str, trigger: Trigger, outcome: str, retriable: bool) -> None:
    """After the work: keep the claim with its outcome, or release it when a retry should run."""
    if not trigger.event_id or not store_exists(settings):
        return
    conn = open_store(settings)
    try:
        if retriable:
            release_event(conn, function, trigger.event_source or "", trigger.event_id)
        else:
            finish_event(conn, function, trigger.event_source or "", trigger.event_id, outcome)
    finally:
        conn.close()


def redelivery_answer(trigger: Trigger, claim: Claim) -> tuple[dict[str, str | None], int]:
    """What a function answers to a redelivered event, and its status.

    DONE is a 200 "duplicate": the sender must stop. RUNNING is a 503 (with `Retry-After`, see
    `answer_headers`): the first delivery may still fail in a way worth a retry, and a sender told
    "done" would never send again, losing the work. 503 because every sender here retries it:
    PingSource (which does not retry a 500), Alertmanager (5xx only, not 429) and a Broker.
    """
    body: dict[str, str | None] = {"event_id": trigger.event_id, "event_source": trigger.event_source}
    if claim is Claim.DONE:
        return {"status": "duplicate", **body}, 200
    error = (f"event {trigger.event_id} from {trigger.event_source} is still being handled by an earlier "
             f"delivery; retry later")
    return {"status": RUNNING_STATUS, **body, "error": error}, 503


def answer_headers(body: dict) -> dict[str, str]:
    """Extra headers of a function's answer: `Retry-After` when an earlier delivery is still running."""
    return {"Retry-After": str(RUNNING_RETRY_AFTER_SECONDS)} if body.get("status") == RUNNING_STATUS else {}
