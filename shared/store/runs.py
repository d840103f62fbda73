"""Writing a collection run into the database: the run row, its containers' spans and samples in one transaction.

Either the whole run is stored or none of it: a run that fails half way leaves only a `failed` run
row (written after the rollback), never some of its samples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from shared.core.timeutil import DAY_SECONDS
from shared.store.connection import is_postgres, transaction
from shared.store.container_spans import SpanBook
from shared.store.counters import (
    COLLECTIONS,
    PROMETHEUS_QUERIES,
    PROMETHEUS_RESPONSE_BYTES,
    PROMETHEUS_SAMPLES_PROCESSED,
    PROMETHEUS_SERIES_RETURNED,
    bump,
)
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN, RunStatus
from shared.store.workload_facts import store_workload_facts

if TYPE_CHECKING:
    from shared.sources.inventory import Inventory
    from shared.sources.usage import ContainerKey, ContainerUsage


@dataclass
class RunRecord:
    """One row of `runs`: what a collection (or a skipped or failed attempt) did."""

    trigger: str
    started_at: float
    finished_at: float
    status: RunStatus
    event_source: str | None = None
    event_id: str | None = None
    pods: int = 0
    containers: int = 0
    nodes: int = 0
    error: str | None = None
    kubernetes_seconds: float | None = None
    prometheus_seconds: float | None = None
    database_seconds: float | None = None
    kubernetes_requests: int | None = None
    prometheus_queries: int | None = None
    window_seconds: int | None = None
    namespaces: str | None = None  # comma-separated scope of the run; None: every namespace
    cluster: str | None = None  # CLUSTER_NAME
    warnings: str | None = None  # what the run noticed without failing (duplicated series), newline-separated
    prometheus_series_returned: int | None = None
    prometheus_response_bytes: int | None = None
    prometheus_samples_processed: int | None = None  # None: the server does not report it
    id: int | None = None

    def as_dict(self) -> dict:
        """The run's fields by name; their names are the `runs` table's columns."""
        return asdict(self)


def insert_run(conn: Connection, run: RunRecord) -> int:
    """Insert the run row (inside the caller's transaction, or alone) and return its id."""
    columns = [name for name in run.as_dict() if name != "id"]
    cursor = conn.execute(
        f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) RETURNING id",
        [getattr(run, name) for name in columns],
    )
    run.id = int(cursor.fetchone()[0])
    bump(conn, COLLECTIONS, {"status": run.status})  # collection_errors_total: kept when runs are pruned
    for counter, amount in ((PROMETHEUS_QUERIES, run.prometheus_queries),
                            (PROMETHEUS_SERIES_RETURNED, run.prometheus_series_returned),
                            (PROMETHEUS_RESPONSE_BYTES, run.prometheus_response_bytes),
                            (PROMETHEUS_SAMPLES_PROCESSED, run.prometheus_samples_processed)):
        if amount:
            bump(conn, counter, {}, amount)
    return run.id


@dataclass(frozen=True)
class WindowRuns:
    """What the successful runs of a report window noticed and asked of Prometheus: data quality and cost."""

    runs: int
    warnings: tuple[str, ...]  # distinct, oldest first (duplicated series and the setting that removes them)
    prometheus_queries: int
    prometheus_series_returned: int
    prometheus_response_bytes: int
    prometheus_samples_processed: int | None  # None: the server reported none

    def as_dict(self) -> dict:
        """The figures by name, as the report's JSON shows them."""
        return asdict(self) | {"warnings": list(self.warnings)}


def window_runs(conn: Connection, start: float, end: float) -> WindowRuns:
    """The successful runs started in [start, end): how many, their warnings, their Prometheus cost."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(prometheus_queries), 0), COALESCE(SUM(prometheus_series_returned), 0),"
        " COALESCE(SUM(prometheus_response_bytes), 0), SUM(prometheus_samples_processed) FROM runs"
        f" WHERE {SUCCESSFUL_RUN} AND started_at >= ? AND started_at < ?", (start, end)).fetchone()
    warnings: dict[str, None] = {}
    for (text,) in conn.execute(f"SELECT warnings FROM runs WHERE {SUCCESSFUL_RUN} AND started_at >= ?"
                                " AND started_at < ? AND warnings IS NOT NULL ORDER BY id", (start, end)):
        warnings.update(dict.fromkeys(line for line in text.splitlines() if line))
    return WindowRuns(row[0], tuple(warnings), row[1], row[2], row[3], row[4])


def record_run(conn: Connection, run: RunRecord) -> int:
    """Store a run without samples (skipped or failed) in its own transaction."""
    with transaction(conn):
        return insert_run(conn, run)


def store_collection(
    conn: Connection,
    run: RunRecord,
    inventory: Inventory,
    usage: dict[ContainerKey, ContainerUsage],
    group_label: str | None = None,
) -> int:
    """Store the run row, identities, the containers' spans, one sample per container, and the workloads'
    policies, group (`group_label`'s value) and HPAs, atomically.

    A sample's time is its run's `started_at` (read as CAST(started_at AS INTEGER) where whole seconds count)."""
    with transaction(conn):
        run_id = insert_run(conn, run)
        node_ids = _node_ids(conn, inventory)
        conn.executemany(
            "INSERT INTO node_samples VALUES (?, ?, ?, ?, ?, ?)",
            [(run_id, node_ids[n.name], n.cpu_capacity_millicores, n.cpu_allocatable_millicores,
              n.memory_capacity_bytes, n.memory_allocatable_bytes) for n in inventory.nodes],
        )
        workload_ids = _workload_ids(conn, inventory)
        container_ids = _container_ids(conn, inventory, workload_ids)
        pod_ids = _pod_ids(conn, inventory, workload_ids, node_ids)
        span_ids = _span_ids(conn, run_id, inventory, workload_ids, container_ids, pod_ids)
        rows = _sample_rows(run_id, inventory, usage, span_ids)
        if is_postgres(conn):
            from shared.store.postgres import ensure_sample_partitions

            day = int(run.started_at) // DAY_SECONDS * DAY_SECONDS
            ensure_sample_partitions(conn, day)  # type: ignore[arg-type]
            conn.copy_rows("samples", (*SAMPLE_COLUMNS, "day"),  # type: ignore[attr-defined]
                           (row + (day,) for row in rows))
        else:
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        store_workload_facts(conn, run_id, inventory, group_label)
    return run_id


# `samples` in its columns' order (the rows of _sample_rows): COPY names them.
SAMPLE_COLUMNS = ("run_id", "span_id", "cpu_usage_avg_millicores", "cpu_usage_max_millicores",
                  "memory_working_set_avg_bytes", "memory_working_set_max_bytes", "cpu_throttled_ratio",
                  "restart_count", "last_termination_reason", "oom_events")


def _span_ids(
    conn: Connection, run_id: int, inventory: Inventory, workload_ids: dict[tuple[str, str, str], int],
    container_ids: dict[tuple[int, str], int], pod_ids: dict[str, int],
) -> list[int]:
    """The span of every container, in inventory order, with the spans written (shared/store/container_spans.py)."""
    spans = SpanBook(conn, pod_ids.values())
    span_id, span_ids = spans.span_id, []
    for pod in inventory.pods:
        workload_id, pod_id = workload_ids[(pod.namespace, pod.workload_kind, pod.workload_name)], pod_ids[pod.uid]
        for c in pod.containers:
            span_ids.append(span_id(run_id, pod_id, container_ids[(workload_id, c.name)], (
                pod.phase, c.cpu_request_millicores, c.cpu_limit_millicores, c.memory_request_bytes,
                c.memory_limit_bytes)))
    spans.write()
    return span_ids


def _sample_rows(
    run_id: int, inventory: Inventory, usage: dict[ContainerKey, ContainerUsage], span_ids: list[int],
) -> Iterator[tuple]:
    """One `samples` row per container, generated so 20,000 rows never sit in a list at once."""
    span_id = iter(span_ids)
    for pod in inventory.pods:
        for c in pod.containers:
            u = usage.get((pod.namespace, pod.name, c.name))
            yield (
                run_id, next(span_id),
                _round(u.cpu_avg_millicores) if u else None, _round(u.cpu_max_millicores) if u else None,
                _round(u.memory_avg_bytes) if u else None, _round(u.memory_max_bytes) if u else None,
                u.cpu_throttled_ratio if u else None,
                c.restart_count, c.last_termination_reason,
                _round(u.oom_events) if u else None,
            )


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def _node_ids(conn: Connection, inventory: Inventory) -> dict[str, int]:
    names = {n.name for n in inventory.nodes} | {p.node for p in inventory.pods if p.node}
    conn.executemany("INSERT OR IGNORE INTO nodes (name) VALUES (?)", [(name,) for name in names])
    return {name: node_id for node_id, name in conn.execute("SELECT id, name FROM nodes") if name in names}


def _workload_ids(conn: Connection, inventory: Inventory) -> dict[tuple[str, str, str], int]:
    keys = {(p.namespace, p.workload_kind, p.workload_name) for p in inventory.pods}
    conn.executemany("INSERT OR IGNORE INTO workloads (namespace, kind, name) VALUES (?, ?, ?)", keys)
    return {
        (ns, kind, name): wid
        for wid, ns, kind, name in conn.execute("SELECT id, namespace, kind, name FROM workloads")
        if (ns, kind, name) in keys
    }


def _container_ids(
    conn: Connection, inventory: Inventory, workload_ids: dict[tuple[str, str, str], int]
) -> dict[tuple[int, str], int]:
    keys = {
        (workload_ids[(p.namespace, p.workload_kind, p.workload_name)], c.name)
        for p in inventory.pods for c in p.containers
    }
    conn.executemany("INSERT OR IGNORE INTO containers (workload_id, name) VALUES (?, ?)", keys)
    return {
        (wid, name): cid
        for cid, wid, name in conn.execute("SELECT id, workload_id, name FROM containers")
        if (wid, name) in keys
    }


def _pod_ids(
    conn: Connection, inventory: Inventory, workload_ids: dict[tuple[str, str, str], int],
    node_ids: dict[str, int],
) -> dict[str, int]:
    """Every pod's id. Only new pods are written, and pods whose node (set once scheduled) or QoS class changed."""
    uids = [p.uid for p in inventory.pods]
    stored = {uid: (pod_id, node_id, qos_class) for uid, pod_id, node_id, qos_class in conn.execute(
        f"SELECT uid, id, node_id, qos_class FROM pods WHERE {_UID_IN}", _uids_parameter(conn, uids))}
    changed = []
    for p in inventory.pods:
        node_id = node_ids.get(p.node) if p.node else None
        known = stored.get(p.uid)
        if known is None or known[1:] != (node_id, p.qos_class):
            changed.append((p.uid, workload_ids[(p.namespace, p.workload_kind, p.workload_name)], p.name, node_id,
                            p.qos_class))
    if not changed:
        return {uid: known[0] for uid, known in stored.items()}
    conn.executemany(
        "INSERT INTO pods (uid, workload_id, name, node_id, qos_class) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (uid) DO UPDATE SET node_id = excluded.node_id, qos_class = excluded.qos_class", changed)
    return dict(conn.execute(f"SELECT uid, id FROM pods WHERE {_UID_IN}", _uids_parameter(conn, uids)))


_UID_IN = "uid IN (SELECT value FROM json_each(?))"  # PostgreSQL: uid IN (SELECT unnest(text[]))


def _uids_parameter(conn: Connection, uids: list[str]) -> tuple:
    """The pod uids as the query's one parameter: a JSON array for SQLite's json_each, a text[] for PostgreSQL."""
    return (uids,) if is_postgres(conn) else (json.dumps(uids),)
