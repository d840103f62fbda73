"""alert_notify's work behind its HTTP edge: check the token, read the alerts, send once, answer.

Answers are chosen for the senders: an empty 204 when done (behind a Knative Broker a body that is
not a CloudEvent turns into a 502), 503 when a channel failed for a reason worth a retry (both
Alertmanager and the Broker retry 5xx), 500 when the failure is permanent (a wrong webhook URL), and
4xx for input that will never work. A redelivered event is not sent twice: the whole event is
claimed once, and on a retry after a partial failure the channels that already took it are skipped.
A redelivery that arrives while the first delivery is still sending answers 503 (with Retry-After),
not "done": that delivery may yet fail, and a sender told "done" stops retrying.
"""

from __future__ import annotations

import hmac
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.core.logs import log_context
from shared.core.settings import Settings
from shared.entry.delivery import RUNNING_STATUS, answer_headers
from shared.entry.http import AnyAnswer, http_function, json_answer
from shared.entry.triggers import BadRequest, is_cloudevent, parse_http_trigger
from shared.notify.cloudevents import ALERT_EVENT_TYPES
from shared.notify.cloudevents import SOURCE as EVENT_SOURCE
from shared.notify.dispatch import send_groups, sent_channels
from shared.notify.incoming import alertmanager_groups, event_groups
from shared.notify.message import AlertGroup
from shared.notify.routing import secret_text
from shared.store.connection import open_store
from shared.store.dialect import Connection
from shared.store.idempotency import Claim, claim_event, finish_event, release_event

log = logging.getLogger(__name__)

FUNCTION = "alert_notify"
ALERTMANAGER_SOURCE = "alertmanager"
# Alertmanager retries a notification within its group_interval (5 minutes by default) and sends the
# very same group again on purpose after repeat_interval (hours): a key seen longer ago than this is
# a repeat to send, not a retry to drop.
ALERTMANAGER_RETRY_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Inbound:
    """A request turned into alert groups, with the identity used to drop redeliveries."""

    groups: list[AlertGroup]
    source: str
    event_id: str
    retry_window_seconds: float | None = None  # None: a seen id is always a duplicate

    @property
    def key(self) -> str:
        """The idempotency key: the same event id from another source is another event."""
        return f"{self.source} {self.event_id}"


@http_function(FUNCTION)
def alert_notify(request: Any, settings: Settings) -> AnyAnswer:
    """Deliver one alert batch: an empty 204 when delivered (or already handled), JSON naming the failures otherwise."""
    status, body = notify_from_http(request, settings)
    if body is None:
        return "", status
    return json_answer(body, status, answer_headers(body))


def notify_from_http(
    request: Any, settings: Settings, clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
) -> tuple[int, dict | None]:
    """A Flask request in; the status and JSON body (None: empty) to answer.

    With ALERT_WEBHOOK_TOKEN set every request must carry it, CloudEvents too: a `Ce-Specversion`
    header costs a forger nothing. A Knative Broker cannot add a token of ours, so behind one
    ALERT_CLOUDEVENTS_WITHOUT_TOKEN lets CloudEvents in without it; who may call is then the
    NetworkPolicy's business (README, "Alerts and notifications").
    """
    if not (settings.alert_cloudevents_without_token and is_cloudevent(request.headers)):
        check_token(request.headers.get("Authorization"), settings)
    inbound = read_inbound(request, settings.max_body_bytes)
    with log_context(event_id=inbound.event_id):
        conn = open_store(settings)
        try:
            return _deliver(conn, inbound, settings, clock, sleep, rng)
        finally:
            conn.close()


def check_token(authorization: str | None, settings: Settings) -> None:
    """With ALERT_WEBHOOK_TOKEN set, require `Authorization: Bearer <token>` (compared in constant time)."""
    token = secret_text(settings.alert_webhook_token)
    if token is None:
        return
    expected = token.encode()
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise BadRequest("missing or wrong bearer token: send `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>`", 401)


def read_inbound(request: Any, max_body_bytes: int) -> Inbound:
    """Our alert CloudEvent (binary or structured) or an Alertmanager webhook, or BadRequest.

    Alert CloudEvents come from our collector only: another source is refused, not sent on.
    """
    trigger = parse_http_trigger(request, ALERT_EVENT_TYPES, max_body_bytes)
    if trigger.kind == "cloudevent":
        if trigger.event_source != EVENT_SOURCE:
            raise BadRequest(f"CloudEvent source {trigger.event_source!r} is not accepted: alert_notify takes alert "
                             f"events only from the collector, source {EVENT_SOURCE!r}")
        return Inbound(event_groups(trigger.data), EVENT_SOURCE, trigger.event_id or "")
    groups, key = alertmanager_groups(trigger.data)
    return Inbound(groups, ALERTMANAGER_SOURCE, key, ALERTMANAGER_RETRY_WINDOW_SECONDS)


def _deliver(
    conn: Connection, inbound: Inbound, settings: Settings, clock: Callable[[], float],
    sleep: Callable[[float], None], rng: random.Random | None,
) -> tuple[int, dict | None]:
    now = clock()
    claim = _claim(conn, inbound, now)
    if claim is Claim.RUNNING:
        log.info("redelivery of %s while an earlier delivery is still sending it: answered 503", inbound.key)
        return 503, {"status": RUNNING_STATUS, "error": f"alerts {inbound.key} are still being sent by an earlier "
                                                        f"delivery; retry later"}
    if claim is Claim.DONE:
        log.info("duplicate delivery of %s: already handled", inbound.key)
        return 204, None
    since = now - inbound.retry_window_seconds if inbound.retry_window_seconds is not None else 0.0
    try:
        results = send_groups(settings, conn, inbound.groups, event_id=inbound.key,
                              already_sent=sent_channels(conn, inbound.key, since), clock=clock, sleep=sleep, rng=rng)
    except Exception:  # answered as a 500 by the caller: let the sender's retry in
        release_event(conn, FUNCTION, inbound.source, inbound.event_id)
        raise
    failures = {f"{r.group.severity}/{name}": error for r in results for name, error in r.failures.items()}
    if any(r.worth_retrying for r in results):
        release_event(conn, FUNCTION, inbound.source, inbound.event_id)
        return 503, {"error": "delivery failed; retry later", "failures": failures}
    finish_event(conn, FUNCTION, inbound.source, inbound.event_id, "failed" if failures else "sent")
    if failures:
        return 500, {"error": "delivery failed and a retry would fail the same way; check the channel settings",
                     "failures": failures}
    return 204, None


def _claim(conn: Connection, inbound: Inbound, now: float) -> Claim:
    """Claim the event; an Alertmanager key handled longer ago than its retry window is claimed anew."""
    claim = claim_event(conn, FUNCTION, inbound.source, inbound.event_id, now)
    if claim is not Claim.DONE or inbound.retry_window_seconds is None:
        return claim
    row = conn.execute(
        "SELECT received_at FROM processed_events WHERE function = ? AND source = ? AND event_id = ?",
        (FUNCTION, inbound.source, inbound.event_id),
    ).fetchone()
    if row is None or row[0] > now - inbound.retry_window_seconds:
        return claim
    release_event(conn, FUNCTION, inbound.source, inbound.event_id)
    return claim_event(conn, FUNCTION, inbound.source, inbound.event_id, now)
