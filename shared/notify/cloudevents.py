"""CloudEvents the collector sends to K_SINK: a run completed or failed, alerts fired or resolved.

A Knative SinkBinding injects `K_SINK` (where to send, usually a Broker) and `K_CE_OVERRIDES`
(extension attributes to add to every event). Events are sent in binary mode (attributes as `ce-`
headers, data as the JSON body) with a timeout and bounded retries. Alert events carry a `severity`
extension so Triggers can filter on it, and a whole severity group per event, so alert_notify sends
one message per group.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.core.deadline import Deadline
from shared.core.formats import iso_utc
from shared.core.settings import Settings
from shared.domain.alerts.model import rfc3339
from shared.notify.delivery import Attempt, post, request_timeout, retry_policy, with_retries
from shared.notify.message import AlertGroup
from shared.store.run_status import RunStatus
from shared.store.runs import RunRecord

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent  # heavy: imported at run time only where events are built

log = logging.getLogger(__name__)

SOURCE = "/k8s-resource-monitor/collect"
ALERT_FIRING = "dev.k8smonitor.alert.firing"
ALERT_RESOLVED = "dev.k8smonitor.alert.resolved"
COLLECTION_COMPLETED = "dev.k8smonitor.collection.completed"
COLLECTION_FAILED = "dev.k8smonitor.collection.failed"
ALERT_EVENT_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED})


def collection_event(run: RunRecord, settings: Settings, now: float) -> CloudEvent:
    """`collection.completed` (ok, partial) or `collection.failed` for a stored run."""
    event_type = COLLECTION_FAILED if run.status == RunStatus.FAILED else COLLECTION_COMPLETED
    data = {"run_id": run.id, "status": run.status, "cluster": settings.cluster_name, "trigger": run.trigger,
            "pods": run.pods,
            "containers": run.containers, "nodes": run.nodes, "error": run.error,
            "started_at": rfc3339(run.started_at), "finished_at": rfc3339(run.finished_at),
            "duration_seconds": round(run.finished_at - run.started_at, 3)}
    return _event(event_type, data, settings, now)


def alert_events(groups: list[AlertGroup], run_id: int | None, settings: Settings, now: float) -> list:
    """`alert.firing` and `alert.resolved` events per severity group (when it has such alerts).

    A group too large for one request to alert_notify (half of MAX_BODY_BYTES) is split over several
    events. Each event has a fresh id: a restored database reuses run ids, and alert_notify drops
    ids it has seen.
    """
    events = []
    for group in groups:
        for event_type, alerts in ((ALERT_FIRING, group.firing), (ALERT_RESOLVED, group.resolved)):
            status = "firing" if event_type == ALERT_FIRING else "resolved"
            for chunk in _chunks([a.as_alertmanager() for a in alerts], settings.max_body_bytes // 2):
                data = {"status": status, "severity": group.severity, "run_id": run_id, "alerts": chunk}
                events.append(_event(event_type, data, settings, now, severity=group.severity))
    return events


def _chunks(alerts: list[dict], max_bytes: int) -> list[list[dict]]:
    """`alerts` in consecutive lists whose JSON stays under `max_bytes` (one alert at least each)."""
    chunks: list[list[dict]] = []
    size = max_bytes
    for alert in alerts:
        alert_bytes = len(json.dumps(alert)) + 2
        if size + alert_bytes > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(alert)
        size += alert_bytes
    return chunks


def _event(event_type: str, data: dict, settings: Settings, now: float, **extensions: str) -> CloudEvent:
    from cloudevents.http import CloudEvent

    attributes = {"type": event_type, "source": SOURCE, "id": str(uuid.uuid4()), "time": iso_utc(now),
                  "datacontenttype": "application/json", **extensions, **settings.k_ce_overrides}
    return CloudEvent(attributes, data)


def emit(
    event: CloudEvent, settings: Settings,
    sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
    deadline: Deadline | None = None,
) -> Attempt:
    """Send one event to K_SINK in binary mode, retrying what is worth it; the final outcome is logged.

    With a `deadline`, no request or retry wait goes past it.
    """
    from cloudevents.conversion import to_binary

    sink = settings.k_sink or ""
    headers, body = to_binary(event)

    def record(number: int, attempt: Attempt) -> None:
        if not attempt.ok:
            log.debug("event %s to K_SINK, attempt %d: %s", event["type"], number, attempt.error)

    final = with_retries(
        lambda: post(sink, request_timeout(settings.notify_timeout_seconds, deadline), body=body, headers=headers),
        retry_policy(settings), record, sleep, rng, deadline)
    if final.ok:
        log.info("sent %s (%s) to K_SINK", event["type"], event["id"])
    else:
        log.warning("could not send %s (%s) to K_SINK: %s", event["type"], event["id"], final.error)
    return final
