"""The monitor's own Prometheus metrics: every function's HTTP requests, and figures from the database.

Functions are stateless and scale to zero, so nothing about collections, backups or notifications
is kept in a process's memory: `DatabaseCollector` reads them from the database at each scrape,
and any instance, even one started a second ago, reports the same numbers. Only the HTTP request
metrics belong to one process, as for any server: sum them across instances, `rate()` them over
restarts. `observes_requests` records them for every function and answers `GET /metrics` for a
function that does not route that path itself (the health function adds the database figures).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.samples import Sample

from shared.store.connection import StoreError, is_postgres, open_store
from shared.store.counters import (
    COLLECTIONS,
    NOTIFICATIONS_SENT,
    PROMETHEUS_QUERIES,
    PROMETHEUS_RESPONSE_BYTES,
    PROMETHEUS_SAMPLES_PROCESSED,
    PROMETHEUS_SERIES_RETURNED,
    counter_values,
)
from shared.store.dialect import Connection
from shared.store.run_status import RunStatus
from shared.store.size import stored_bytes
from shared.store.snapshot import read_snapshot

if TYPE_CHECKING:
    from shared.core.settings import Settings

METRICS_PATH = "/metrics"
OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# `*_created` series double the exposition and no query here uses them.
disable_created_metrics()

HTTP_REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests answered by this instance, by method, route (unknown paths: other) and status",
    ["method", "endpoint", "status"], registry=HTTP_REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds", "Seconds this instance took to answer HTTP requests, by method and route",
    ["method", "endpoint"], registry=HTTP_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)


def observes_requests(
    routes: Iterable[str] = ("/",), cluster: Callable[[], str | None] = lambda: None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count and time every request of a functions-framework handler, labelled by route.

    `routes` are the paths the function serves; any other path is labelled `other`, so a scanner
    probing random URLs cannot grow the label set. A function whose routes do not include
    `/metrics` gets `GET /metrics` answered here with this instance's HTTP metrics, labelled with
    `cluster()` (CLUSTER_NAME) when it gives one.
    """
    known = frozenset(_normal_path(route) for route in routes)

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from flask import has_request_context, request

            if not has_request_context():  # called directly, not serving a request: nothing to count
                return handler(*args, **kwargs)
            method = request.method if request.method in _METHODS else OTHER
            path = _normal_path(request.path)
            endpoint = path if path in known or path == METRICS_PATH else OTHER
            started = time.perf_counter()
            status = 500
            try:
                if endpoint == METRICS_PATH and METRICS_PATH not in known and method in ("GET", "HEAD"):
                    answer: Any = metrics_answer(HTTP_REGISTRY, cluster=cluster())
                else:
                    answer = handler(*args, **kwargs)
                status = _status_of(answer)
                return answer
            finally:
                HTTP_REQUESTS.labels(method, endpoint, str(status)).inc()
                HTTP_REQUEST_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)

        return wrapper

    return decorate


def _normal_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _status_of(answer: Any) -> int:
    """The status of a handler's answer: (body, status[, headers]), a Response, or a body (200)."""
    if isinstance(answer, tuple) and len(answer) >= 2 and isinstance(answer[1], int):
        return answer[1]
    return int(getattr(answer, "status_code", 200))


def metrics_answer(*collectors: Any, cluster: str | None = None) -> tuple[bytes, int, dict[str, str]]:
    """The Prometheus text exposition of `collectors` (registries or collectors), as a handler answer.

    With `cluster` (CLUSTER_NAME) every sample carries a `cluster` label, so a central Prometheus
    tells the monitors of several clusters apart. Served as text format 0.0.4, which every
    Prometheus version parses; the body is that format.
    """
    body = generate_latest(_Exposition(collectors, {"cluster": cluster} if cluster else {}))
    return body, 200, {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}


class _Exposition:
    """Several collectors seen as one registry by `generate_latest`, `labels` added to every sample."""

    def __init__(self, collectors: Iterable[Any], labels: dict[str, str]):
        self._collectors = tuple(collectors)
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            for family in collector.collect():
                yield _labelled(family, self._labels) if self._labels else family


def _labelled(family: Metric, labels: dict[str, str]) -> Metric:
    """A copy of `family` whose samples carry `labels` too (a sample's own label of that name wins)."""
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = [Sample(s.name, {**labels, **s.labels}, s.value, s.timestamp, s.exemplar) for s in family.samples]
    return copy


class DatabaseCollector:
    """Collection, backup and notification figures, and the report's resource figures
    (shared/ops/resource_metrics.py), read from the database at each scrape in one snapshot.

    Figures about "the last run" are gauges. The `*_total` counters come from the `counters`
    table (shared/store/counters.py), bumped with each run and notification attempt and never pruned,
    so they never go down when retention deletes old rows.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self._settings = settings
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """The figures read from the database for this scrape; only `database_readable` 0 when it cannot be read."""
        readable = GaugeMetricFamily(
            "database_readable", "1 when the database could be read for this scrape; the figures below need it")
        try:
            conn = open_store(self._settings, readonly=True,
                              timeout_seconds=self._settings.health_check_timeout_seconds)
        except (StoreError, sqlite3.Error):
            readable.add_metric([], 0)
            yield readable
            return
        try:
            with read_snapshot(conn):
                families = list(self._families(conn))
        except sqlite3.DatabaseError:
            families = []
        finally:
            conn.close()
        readable.add_metric([], 1 if families else 0)
        yield readable
        yield from families

    def _families(self, conn: Connection) -> Iterator[Metric]:
        # Only `health` serves this collector; every other function loads metrics.py for its HTTP
        # counters, so the health and report modules are imported at scrape time, not at their start.
        from shared.ops.health import database_size_bytes, read_monitor_state
        from shared.ops.resource_metrics import resource_families

        state = read_monitor_state(conn)
        success, last_run = state.last_success, state.last_run
        size = stored_bytes(conn) if is_postgres(conn) else database_size_bytes(self._settings.database_path)
        yield _gauge("database_size_bytes", "Bytes of the SQLite database file and its write-ahead log, or of the"
                     " cluster's schema on PostgreSQL", size)
        yield _gauge(
            "pods_collected_total",
            "Pods seen by the last successful (ok or partial) collection run; a gauge despite the "
            "_total in its name, which comes from the original design",
            success.pods if success else None,
        )
        yield _gauge("last_successful_collection_timestamp_seconds",
                     "Unix time the last ok or partial collection run finished; 0 when there is none",
                     success.finished_at if success else 0)
        yield _gauge("collection_duration_seconds",
                     "Seconds the last collection run (ok, partial or failed) took from start to end",
                     last_run.finished_at - last_run.started_at if last_run else None)
        yield _gauge("kubernetes_request_duration_seconds",
                     "Seconds the last collection run spent waiting on the Kubernetes API, all its requests together",
                     last_run.kubernetes_seconds if last_run else None)
        yield _gauge("prometheus_request_duration_seconds",
                     "Seconds the last collection run spent on its Prometheus queries, all together",
                     last_run.prometheus_seconds if last_run else None)
        errors = CounterMetricFamily(
            "collection_errors",
            "Collection runs that failed (nothing collected) or were partial (stored with an error, "
            "such as Prometheus down)",
            labels=["status"],
        )
        runs = {labels.get("status"): value for labels, value in counter_values(conn, COLLECTIONS)}
        for status in (RunStatus.FAILED, RunStatus.PARTIAL):
            errors.add_metric([status], runs.get(status, 0))
        yield errors
        asked = {PROMETHEUS_QUERIES: "Queries the collection runs sent to Prometheus (retries included)",
                 PROMETHEUS_SERIES_RETURNED: "Series in the answers Prometheus gave the collection runs",
                 PROMETHEUS_RESPONSE_BYTES: "Bytes of the answers' JSON Prometheus gave the collection runs",
                 PROMETHEUS_SAMPLES_PROCESSED: "Samples Prometheus reported it processed for the collection "
                                               "runs (stats=all; stays 0 where the server does not report it)"}
        for name, documentation in asked.items():
            yield CounterMetricFamily(name, documentation, value=sum(value for _, value in counter_values(conn, name)))
        sent = CounterMetricFamily(
            "notifications_sent", "Notification attempts, by channel and outcome (sent, retry, failed)",
            labels=["channel", "status"],
        )
        for labels, value in counter_values(conn, NOTIFICATIONS_SENT):
            sent.add_metric([labels.get("channel", ""), labels.get("status", "")], value)
        yield sent
        yield _gauge("backup_last_success_timestamp_seconds",
                     "Unix time the latest good backup finished; 0 when there is none", state.last_backup_at or 0)
        yield from resource_families(conn, self._settings, self._clock())


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    """A family with one sample, or none when the value is unknown (absent beats a false zero)."""
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family
