"""One collection run: read the cluster and its usage, store them, and say how it went.

Partial failure is a result, not a crash: Prometheus down stores the Kubernetes data as a `partial`
run, and so does a missing permission on nodes, ReplicaSets or Jobs (pods are then stored under
their immediate owner's name); Kubernetes down or pods forbidden stores a `failed` run with the
reason. Only one run at a time collects; a concurrent invocation records a `skipped` run and returns
at once.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from shared.core.database_url import PostgresTarget
from shared.core.deadline import BudgetExceeded, Deadline
from shared.core.settings import Settings, is_namespace_name
from shared.domain.errors import InvalidInput
from shared.domain.trigger import Trigger
from shared.sources.kube import KubeClient, KubeError
from shared.sources.kube_credentials import KubeCredentialsError, load_credentials
from shared.sources.usage import UsageResult
from shared.store.collector_lock import collector_lock
from shared.store.connection import ServerUnavailable, StoreError, open_store
from shared.store.run_status import RunStatus
from shared.store.runs import RunRecord, record_run, store_collection

if TYPE_CHECKING:
    from shared.sources.prometheus import PrometheusStats

log = logging.getLogger(__name__)



class CollectRequest(BaseModel):
    """The optional body of a collection request: which namespaces to collect."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] | None = None

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not is_namespace_name(name):
                raise ValueError(f"{name!r} is not a valid namespace name")
        return value

    def scope(self, settings: Settings) -> tuple[str, ...] | None:
        """The namespaces to collect (None: every one); a request may narrow NAMESPACES_INCLUDE, not widen it."""
        if not self.namespaces:
            return settings.namespaces_include or None
        outside = sorted(set(self.namespaces) - set(settings.namespaces_include)) if settings.namespaces_include else []
        if outside:
            raise InvalidInput(f"namespace(s) {', '.join(outside)} are outside NAMESPACES_INCLUDE "
                             f"({', '.join(settings.namespaces_include)})")
        return tuple(dict.fromkeys(self.namespaces))


def parse_collect_request(data: dict) -> CollectRequest:
    """Validate a request body, or InvalidInput naming the offending field."""
    try:
        return CollectRequest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "body"
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{where}: {message.removeprefix('Value error, ')}")
        raise InvalidInput("invalid collect request: " + "; ".join(problems)) from None


@dataclass
class CollectOutcome:
    """The run as stored, plus whether a failure is worth a retry by the sender."""

    run: RunRecord
    retriable: bool = False


def run_collection(
    settings: Settings,
    trigger: Trigger,
    request: CollectRequest | None = None,
    clock: Callable[[], float] = time.time,
    deadline: Deadline | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CollectOutcome:
    """Collect once, unless another collector holds the lock or the Lease (then record a skipped run).

    The file lock beside the database guards one machine; in Kubernetes the Lease also guards
    collectors on other nodes. `deadline` bounds the run (default: COLLECT_BUDGET_SECONDS from now);
    `sleep` is how the clients wait between retries (a test records the waits).
    """
    request = request or CollectRequest()
    deadline = deadline or Deadline(settings.collect_budget_seconds)
    try:
        with collector_lock(settings) as held:
            if not held:
                what = "advisory lock" if isinstance(settings.database, PostgresTarget) else "file lock"
                return _skipped(settings, trigger, clock, f"another collection is running ({what} held)")
            namespace = lease_namespace(settings)
            if namespace is None:
                return _collect(settings, trigger, request, clock, deadline=deadline, sleep=sleep)
            return _collect_under_lease(settings, trigger, request, clock, namespace, deadline, sleep)
    except (sqlite3.Error, ServerUnavailable) as exc:
        if not isinstance(settings.database, PostgresTarget):
            raise
        # PostgreSQL unreachable before the run's transaction: nothing of it is stored (nor, likely, this)
        return _failed(settings, trigger, clock(), clock, f"database: {exc}", is_busy(exc))


def lease_namespace(settings: Settings) -> str | None:
    """Where the collector Lease lives: the pod's namespace (downward API or service account)."""
    if settings.pod_namespace:
        return settings.pod_namespace
    if settings.in_cluster:
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as file:
                return file.read().strip() or None
        except OSError:
            return None
    return None


def _collect_under_lease(
    settings: Settings, trigger: Trigger, request: CollectRequest, clock: Callable[[], float], namespace: str,
    deadline: Deadline, sleep: Callable[[float], None],
) -> CollectOutcome:
    from shared.sources.lease import CollectorLease, LeaseKeeper

    started = clock()
    holder = settings.pod_name or socket.gethostname()
    try:
        client = KubeClient(load_credentials(settings), settings, sleep=sleep)
    except KubeCredentialsError as exc:
        return _failed(settings, trigger, started, clock, f"Kubernetes: {exc}", False)
    try:
        lease = CollectorLease(client, namespace, settings.lease_name, holder, settings.lease_duration_seconds, clock)
        try:
            acquired = lease.try_acquire()
        except KubeError as exc:
            return _failed(settings, trigger, started, clock,
                           f"Kubernetes: cannot take lease {namespace}/{settings.lease_name}: {exc}", exc.retriable)
        if not acquired:
            return _skipped(settings, trigger, clock,
                            f"lease {namespace}/{settings.lease_name} is held by {lease.held_by}")
        try:
            with LeaseKeeper(lease) as keeper:
                return _collect(settings, trigger, request, clock, lambda: keeper.lost, deadline, sleep)
        finally:
            lease.release()
    finally:
        client.close()


def _failed(settings: Settings, trigger: Trigger, started: float, clock: Callable[[], float],
            error: str, retriable: bool) -> CollectOutcome:
    run = _record(settings, _run_record(trigger, started, clock(), RunStatus.FAILED, settings, error=error))
    log.error("collection failed: %s", error, extra={"run_id": run.id})
    return CollectOutcome(run, retriable)


def _skipped(settings: Settings, trigger: Trigger, clock: Callable[[], float], reason: str) -> CollectOutcome:
    now = clock()
    run = _record(settings, _run_record(trigger, now, now, RunStatus.SKIPPED, settings, error=reason))
    log.info("collection skipped: %s", reason, extra={"run_id": run.id})
    return CollectOutcome(run)


def _record(settings: Settings, run: RunRecord) -> RunRecord:
    """Store a run row that has no samples (skipped or failed) on a connection of its own.

    When even that fails (the disk is full) the run is still answered and logged, without an id.
    """
    try:
        conn = open_store(settings)
        try:
            record_run(conn, run)
        finally:
            conn.close()
    except (StoreError, sqlite3.Error) as exc:
        log.error("could not record the %s run: %s", run.status, exc)
    return run


def _scope_text(scope: tuple[str, ...] | None) -> str | None:
    return ",".join(scope) if scope else None


def _run_record(trigger: Trigger, started: float, finished: float, status: RunStatus, settings: Settings,
                **fields: Any) -> RunRecord:
    """The `runs` row of this invocation: how it was triggered and how it ended."""
    return RunRecord(
        trigger=trigger.kind, started_at=started, finished_at=finished, status=status,
        event_source=trigger.event_source, event_id=trigger.event_id,
        window_seconds=settings.collect_interval_seconds, cluster=settings.cluster_name, **fields,
    )


def _collect(
    settings: Settings, trigger: Trigger, request: CollectRequest, clock: Callable[[], float],
    lease_lost: Callable[[], bool] = lambda: False, deadline: Deadline | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CollectOutcome:
    """Read Kubernetes and Prometheus side by side, then store everything in one transaction.

    The usage queries run in a worker thread while the pod pages are read and parsed: Prometheus
    computes while this process parses JSON. A query that must be split by namespace waits for the
    namespaces the pod list found.
    """
    from shared.sources.inventory import read_inventory

    started = clock()
    deadline = deadline or Deadline(settings.collect_budget_seconds)
    conn = open_store(settings)  # migrate before spending time on the network
    scope = request.scope(settings)
    namespaces: Future[tuple[str, ...]] = Future()
    kube_stats = None
    with ThreadPoolExecutor(1, thread_name_prefix="prometheus") as pool:
        usage_future = pool.submit(_read_usage, settings, started, deadline, namespaces, scope, sleep)
        try:
            try:
                credentials = load_credentials(settings)
                with KubeClient(credentials, settings, deadline, sleep) as kube:
                    kube_stats = kube.stats
                    inventory = read_inventory(kube, scope, settings.namespaces_exclude,
                                               settings.kube_page_size, deadline, settings.report_group_by_label)
            except (KubeError, KubeCredentialsError, BudgetExceeded) as exc:
                namespaces.set_result(())
                retriable = isinstance(exc, KubeError) and exc.retriable
                run = _run_record(trigger, started, clock(), RunStatus.FAILED, settings, error=f"Kubernetes: {exc}",
                                  kubernetes_seconds=kube_stats.seconds if kube_stats else None,
                                  kubernetes_requests=kube_stats.requests if kube_stats else None,
                                  namespaces=_scope_text(scope))
                record_run(conn, run)
                log.error("collection failed: %s", run.error, extra={"run_id": run.id})
                return CollectOutcome(run, retriable)
            namespaces.set_result(inventory.namespaces)
            usage, asked = usage_future.result()
            if usage.budget_exceeded:
                return _failed(settings, trigger, started, clock, f"Prometheus: {usage.errors[-1]}", False)
            errors = [f"Prometheus: {e}" for e in usage.errors]
            errors += [f"Kubernetes workloads: {error}" for error in inventory.owners_errors]
            if inventory.nodes_error:
                errors.append(f"Kubernetes nodes: {inventory.nodes_error}")
            if inventory.hpas_error:
                errors.append(f"Kubernetes HPAs: {inventory.hpas_error}")
            if lease_lost():
                return _failed(settings, trigger, started, clock,
                               "lost the collector lease during the run; another collector took over", True)
            stored_at = time.perf_counter()
            run = _run_record(
                trigger, started, clock(), RunStatus.PARTIAL if errors else RunStatus.OK, settings,
                pods=len(inventory.pods), containers=inventory.container_count, nodes=len(inventory.nodes),
                error="; ".join(errors) or None, warnings="\n".join(usage.warnings) or None,
                kubernetes_seconds=round(kube_stats.seconds, 4), prometheus_seconds=round(asked.seconds, 4),
                kubernetes_requests=kube_stats.requests, prometheus_queries=asked.queries,
                prometheus_series_returned=asked.series, prometheus_response_bytes=asked.response_bytes,
                prometheus_samples_processed=asked.samples, namespaces=_scope_text(scope),
            )
            try:
                store_collection(conn, run, inventory, usage.by_container, settings.report_group_by_label)
                run.database_seconds = round(time.perf_counter() - stored_at, 4)
                conn.execute("UPDATE runs SET database_seconds = ? WHERE id = ?", (run.database_seconds, run.id))
            except sqlite3.Error as exc:  # rolled back: nothing of this run is stored
                return _failed(settings, trigger, started, clock, f"database: {exc}", is_busy(exc))
            for warning in usage.warnings:
                log.warning("collection run %s: %s", run.id, warning, extra={"run_id": run.id})
            log.info("collection %s: %d pods, %d containers; Prometheus: %d queries, %d series, %d bytes%s",
                     run.status, run.pods, run.containers, asked.queries, asked.series, asked.response_bytes,
                     f", {asked.samples} samples processed" if asked.samples is not None else "",
                     extra={"run_id": run.id})
            return CollectOutcome(run)
        finally:
            if not namespaces.done():
                namespaces.set_result(())
            conn.close()


_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(exc: sqlite3.Error | ServerUnavailable) -> bool:
    """Whether SQLite gave up waiting for another connection's lock, or PostgreSQL is down: a retry later
    may get through.

    Told by the error code (its primary code: the low byte of an extended one), never by its words.
    """
    if isinstance(exc, ServerUnavailable) or getattr(exc, "retriable", False):  # PostgreSQL down or restarting
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _BUSY_CODES


def _read_usage(
    settings: Settings, at: float, deadline: Deadline, namespaces: Future[tuple[str, ...]],
    scope: tuple[str, ...] | None, sleep: Callable[[float], None],
) -> tuple[UsageResult, PrometheusStats]:
    """Usage of every container, and what it took: seconds (the wall time of the whole, queries run
    side by side), queries, series, bytes and samples."""
    from shared.sources.prometheus import PrometheusClient
    from shared.sources.usage import collect_usage

    started = time.perf_counter()
    with PrometheusClient(settings, deadline, sleep) as prometheus:
        try:
            usage = collect_usage(prometheus, settings, at, namespaces.result, scope)
        except BudgetExceeded as exc:
            usage = UsageResult({}, [str(exc)], budget_exceeded=True)
        return usage, replace(prometheus.stats, seconds=time.perf_counter() - started)
