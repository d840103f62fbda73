"""The collect function's work behind its HTTP edge: dedupe the event, run, choose the answer.

PingSource retries only on 404/413/425/429/502/503/504 and network errors, so a failure worth
retrying answers 503 (and releases the event claim); a permanent one (a missing permission)
answers 500 with the reason, which the sender does not retry. A redelivered event answers 200
`duplicate` once its run is done, and 503 `running` while the first delivery is still at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.core.deadline import Deadline
from shared.core.logs import log_context
from shared.core.memory import limit_malloc_arenas, release_freed_memory
from shared.core.settings import Settings
from shared.domain.collection import CollectRequest, parse_collect_request, run_collection
from shared.domain.trigger import Trigger
from shared.entry.delivery import answer_headers, first_delivery, redelivery_answer, settle_delivery
from shared.entry.http import Answer, http_function, json_answer
from shared.entry.triggers import PING_EVENT_TYPE, parse_http_trigger
from shared.notify.announce import announce_run
from shared.store.idempotency import Claim
from shared.store.retention import retention_after_collection
from shared.store.run_status import SUCCESSFUL_RUN_STATUSES, RunStatus

FUNCTION = "collect"
ACCEPTED_EVENT_TYPES = frozenset({PING_EVENT_TYPE})


@http_function(FUNCTION)
def collect(request: Any, settings: Settings) -> Answer:
    """A CloudEvent or plain POST in; the run summary as JSON, non-2xx when it failed or was refused."""
    trigger = parse_http_trigger(request, ACCEPTED_EVENT_TYPES, settings.max_body_bytes)
    body, status = collect_once(settings, trigger, parse_collect_request(trigger.data))
    return json_answer(body, status, answer_headers(body))


def collect_once(
    settings: Settings, trigger: Trigger, request: CollectRequest | None = None,
    clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict, int]:
    """Run one collection for `trigger` unless its event was already handled.

    COLLECT_BUDGET_SECONDS bounds the whole invocation: the collection, then its alerts, the
    retention pass and the fleet's totals (when due) in whatever time is left, so Knative's
    timeoutSeconds is never reached. `sleep` is how the collection waits between retries of its
    Kubernetes and Prometheus calls.
    """
    limit_malloc_arenas()  # once per process, before the collection's threads allocate
    request = request or CollectRequest()
    request.scope(settings)  # a request outside NAMESPACES_INCLUDE is refused before anything is claimed
    deadline = Deadline(settings.collect_budget_seconds)
    with log_context(event_id=trigger.event_id):
        claim = first_delivery(settings, FUNCTION, trigger, clock(), create=True)
        if claim is not Claim.TAKEN:
            return redelivery_answer(trigger, claim)
        wall_started = time.perf_counter()
        try:
            outcome = run_collection(settings, trigger, request, clock, deadline, sleep)
        except BaseException:
            settle_delivery(settings, FUNCTION, trigger, "failed", retriable=True)
            raise
        wall_seconds = time.perf_counter() - wall_started
        run = outcome.run
        settle_delivery(settings, FUNCTION, trigger, run.status, outcome.retriable)
        with log_context(run_id=run.id):
            if run.id is not None:
                announce_run(settings, run, clock, deadline=deadline)  # logs its own errors, never raises
            if run.status in SUCCESSFUL_RUN_STATUSES:
                retention_after_collection(settings, clock, deadline.remaining())  # logs its errors, never raises
                from shared.domain.report.stored_totals import refresh_fleet_totals  # the report's modules: 50 ms

                refresh_fleet_totals(settings, clock(), deadline.remaining())  # likewise
        release_freed_memory()  # a warm instance waits for the next run at its floor, not its last peak
    body = {
        "run_id": run.id, "status": run.status, "cluster": run.cluster, "trigger": run.trigger,
        "event_id": run.event_id, "pods": run.pods, "containers": run.containers, "nodes": run.nodes,
        "error": run.error, "warnings": run.warnings.split("\n") if run.warnings else [],
        "started_at": run.started_at, "finished_at": run.finished_at,
        "duration_seconds": round(wall_seconds, 3),
        "timings": {"kubernetes_seconds": run.kubernetes_seconds, "prometheus_seconds": run.prometheus_seconds,
                    "database_seconds": run.database_seconds},
        "kubernetes_requests": run.kubernetes_requests, "prometheus_queries": run.prometheus_queries,
        "prometheus_series_returned": run.prometheus_series_returned,
        "prometheus_response_bytes": run.prometheus_response_bytes,
        "prometheus_samples_processed": run.prometheus_samples_processed,
    }
    if run.status != RunStatus.FAILED:
        return body, 200
    return body, 503 if outcome.retriable else 500
