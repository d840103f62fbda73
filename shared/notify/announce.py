"""What a stored collection run tells the world: its CloudEvent, the alerts it changed, the messages due.

Runs right after the run is stored. With K_SINK set (a SinkBinding) the collector only emits
CloudEvents and alert_notify does the sending; without it the collector sends the messages itself.
Nothing here may fail the collection: any error is logged and the run stands as stored. A sink or
channel that is down would hold the run for a minute of retries, past Knative's timeout: a deadline
(what is left of the run's budget) bounds every request and retry, and what did not go out by then
waits for the next run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.core.deadline import Deadline
from shared.core.settings import Settings
from shared.domain.alerts.evaluation import evaluate_rules
from shared.domain.alerts.model import Alert
from shared.domain.alerts.state import claim_due, release_claim, update_state
from shared.notify.message import AlertGroup, group_by_severity
from shared.store.connection import open_store
from shared.store.run_status import RunStatus
from shared.store.runs import RunRecord

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent  # heavy: imported at run time only where events are built

log = logging.getLogger(__name__)


def announce_run(
    settings: Settings, run: RunRecord, clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
    deadline: Deadline | None = None,
) -> None:
    """Emit the run's event, evaluate the alert rules and send what is due, by `deadline` (None: no
    bound); never raises.

    A skipped run announces nothing: the collection that holds the lock will.
    """
    if run.status == RunStatus.SKIPPED:
        return
    try:
        _announce(settings, run, clock, sleep, rng, deadline)
    except Exception:  # the run is stored; alerting trouble must not turn it into a failure
        log.exception("alert evaluation after run %s failed; the run itself is stored", run.id)


def _announce(
    settings: Settings, run: RunRecord, clock: Callable[[], float], sleep: Callable[[float], None],
    rng: random.Random | None, deadline: Deadline | None,
) -> None:
    from shared.notify.cloudevents import alert_events, collection_event, emit

    sink_takes_events = not settings.k_sink or emit(
        collection_event(run, settings, clock()), settings, sleep, rng, deadline).ok
    conn = open_store(settings)
    try:
        now = clock()
        change = update_state(conn, evaluate_rules(conn, settings, now), now)
        if change.started or change.resolved:
            log.info("alerts: %d started firing (%s), %d resolved", len(change.started),
                     _names(change.started), len(change.resolved))
        if not sink_takes_events:
            log.warning("K_SINK refused the run's event: alert notifications wait for the next run")
            return
        claim = claim_due(conn, now, settings.alert_repeat_interval_seconds)
        if not claim.alerts:
            return
        groups = group_by_severity(claim.alerts)
        if settings.k_sink:
            unsent = _emit_until_refused(alert_events(groups, run.id, settings, now), groups, settings, sleep, rng,
                                         deadline)
        else:
            from shared.notify.dispatch import send_groups

            results = send_groups(settings, conn, groups, event_id=f"run-{run.id}", clock=clock, sleep=sleep, rng=rng,
                                  deadline=deadline)
            unsent = [alert for result in results if not result.delivered for alert in result.group.alerts]
        if unsent:
            log.warning("%d alert notification(s) not delivered; the next run tries again", len(unsent))
            release_claim(conn, claim, unsent)
    finally:
        conn.close()


def _emit_until_refused(events: list[CloudEvent], groups: list[AlertGroup], settings: Settings,
                        sleep: Callable[[float], None], rng: random.Random | None,
                        deadline: Deadline | None) -> list[Alert]:
    """Emit the events in order; after a refusal the sink is down (or time is up): keep the rest
    for the next run.

    Returns the alerts of the events not taken.
    """
    from shared.notify.cloudevents import emit

    for index, event in enumerate(events):
        if not emit(event, settings, sleep, rng, deadline).ok:
            return [alert for unsent in events[index:] for alert in _event_alerts(unsent, groups)]
    return []


def _event_alerts(event: CloudEvent, groups: list[AlertGroup]) -> list[Alert]:
    """The alerts an alert event carries, found back in the claimed groups by fingerprint."""
    data = event.get_data() or {}
    fingerprints = {a["fingerprint"] for a in data.get("alerts", ())}
    return [alert for group in groups for alert in group.alerts if alert.fingerprint in fingerprints]


def _names(alerts: list[Alert]) -> str:
    names = sorted({a.name for a in alerts})
    return ", ".join(names) or "-"
