"""Sending alert groups to their routed channels, every attempt recorded in `notifications`.

Channels are tried one after the other and each is wrapped on its own, so a channel that fails (or
crashes) never keeps a group from the others. Each attempt's row (channel, status in
sent|retry|failed) bumps `notifications_sent_total{channel,status}` in the same transaction; rows
older than RETENTION_HOURLY_DAYS are pruned, which that counter does not notice.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.core.deadline import Deadline
from shared.core.settings import Settings
from shared.notify.delivery import Attempt, RetryPolicy, retry_policy, with_retries
from shared.notify.message import AlertGroup
from shared.notify.routing import Channel, configured_channels, route
from shared.store.connection import transaction
from shared.store.counters import NOTIFICATIONS_SENT, bump
from shared.store.dialect import Connection

log = logging.getLogger(__name__)


@dataclass
class GroupResult:
    """How one group fared: the final attempt per channel it was routed to and sent (or tried)."""

    group: AlertGroup
    outcomes: dict[str, Attempt] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        """Someone was told: a channel took it, or no channel was there to try."""
        return not self.outcomes or any(a.ok for a in self.outcomes.values())

    @property
    def worth_retrying(self) -> bool:
        """A channel failed for a reason that may pass (it gave up on timeouts, 5xx, 429)."""
        return any(a.transient for a in self.outcomes.values())

    @property
    def failures(self) -> dict[str, str]:
        """Each failed channel's error, for the answer and logs; empty when every channel delivered."""
        return {name: a.error or "failed" for name, a in self.outcomes.items() if not a.ok}


def send_groups(
    settings: Settings,
    conn: Connection,
    groups: Iterable[AlertGroup],
    event_id: str | None = None,
    already_sent: frozenset[tuple[str, str]] = frozenset(),
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    deadline: Deadline | None = None,
) -> list[GroupResult]:
    """Send each group to its routed, configured channels; `already_sent` holds (channel, severity)
    pairs an earlier delivery of the same event got through, which are not sent twice. With a
    `deadline`, no request or retry wait goes past it."""
    channels = configured_channels(settings, clock, deadline)
    policy = retry_policy(settings)
    prune_notifications(conn, clock() - settings.retention_hourly_days * 86_400)
    results = []
    for group in groups:
        result = GroupResult(group)
        for name in route(group.severity, settings):
            channel = channels.get(name)
            if channel is None:
                log.debug("%s alerts not sent to %s: the channel is not configured", group.severity, name)
                continue
            if (name, group.severity) in already_sent:
                log.info("%s alerts already sent to %s for this event", group.severity, name)
                result.outcomes[name] = Attempt("sent")
                continue
            result.outcomes[name] = send_one(channel, group, policy, conn, event_id, clock, sleep, rng, deadline)
        results.append(result)
    return results


def send_one(
    channel: Channel, group: AlertGroup, policy: RetryPolicy, conn: Connection, event_id: str | None,
    clock: Callable[[], float], sleep: Callable[[float], None], rng: random.Random | None,
    deadline: Deadline | None = None,
) -> Attempt:
    """One group to one channel with retries; each attempt recorded and the outcome logged."""

    def record(number: int, attempt: Attempt) -> None:
        record_attempt(conn, clock(), channel.name, group, number, attempt, event_id)

    final = with_retries(lambda: channel.send(group), policy, record, sleep, rng, deadline)
    count = len(group.alerts)
    if final.ok:
        log.info("sent %d %s alert(s) to %s%s", count, group.severity, channel.name,
                 f" ({final.error})" if final.error else "")
    else:
        log.warning("could not send %d %s alert(s) to %s: %s", count, group.severity, channel.name, final.error)
    return final


def record_attempt(
    conn: Connection, now: float, channel: str, group: AlertGroup, number: int, attempt: Attempt,
    event_id: str | None,
) -> None:
    """One row of `notifications` and its count; a database that refuses them is logged, never fatal
    to the sending."""
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO notifications (created_at, channel, severity, status, attempt, alerts, fingerprints,"
                " event_id, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, channel, group.severity, attempt.status, number, len(group.alerts),
                 json.dumps(group.fingerprints), event_id, attempt.error),
            )
            bump(conn, NOTIFICATIONS_SENT, {"channel": channel, "status": attempt.status})
    except sqlite3.Error as exc:
        log.error("could not record a %s notification attempt: %s", channel, exc)


def prune_notifications(conn: Connection, before: float) -> None:
    """Delete the attempts recorded before `before` (an index range: nothing to scan when none are).

    Only `sent_channels` reads them back, for redeliveries within a day; a database that refuses
    is logged, the sending goes on.
    """
    try:
        with transaction(conn):
            deleted = conn.execute("DELETE FROM notifications WHERE created_at < ?", (before,)).rowcount
    except sqlite3.Error as exc:
        log.error("could not prune old notification attempts: %s", exc)
        return
    if deleted:
        log.info("pruned %d notification attempt(s) older than RETENTION_HOURLY_DAYS", deleted)


def sent_channels(conn: Connection, event_id: str, since: float = 0.0) -> frozenset[tuple[str, str]]:
    """(channel, severity) pairs sent for `event_id` since `since`, so a redelivery skips them."""
    rows = conn.execute("SELECT DISTINCT channel, severity FROM notifications WHERE event_id = ? AND status = 'sent'"
                        " AND created_at >= ?", (event_id, since))
    return frozenset((channel, severity) for channel, severity in rows)
