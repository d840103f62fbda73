"""A container's declared requests and limits over time, and its samples around a change: change impact's reads.

The container spans (shared/store/container_spans.py) hold what each pod's container declared, once
per span of runs, so the spans of a workload container in order of their first run say when its
requests or limits changed (index container_spans_container). Only for containers that changed are
the samples read (their runs' times, pods, phases and what changes from run to run), each with its
pod's previous restart count in the same read, so restarts are counted between samples. Spans go
with their samples (RETENTION_RAW_DAYS): changes older than the raw samples are not found.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class DeclaredSpan:
    """One span of a pod's container: when it began and what it declared (CPU request and limit in
    millicores, memory request and limit in bytes; None where unset)."""

    pod_id: int
    first_ts: int
    declared: tuple[int | None, int | None, int | None, int | None]


@dataclass(frozen=True)
class ImpactSample:
    """One sample of a container, with its pod's previous restart count (None: the pod's first sample read)."""

    ts: int
    pod_id: int
    phase: str
    cpu_usage_avg_millicores: int | None
    memory_working_set_max_bytes: int | None
    cpu_throttled_ratio: float | None
    restart_count: int
    previous_restart_count: int | None
    last_termination_reason: str | None
    oom_events: int | None


def _run_range(conn: sqlite3.Connection, start: int, end: int) -> tuple[int, int]:
    """The smallest and largest id of the runs started in [start, end); (1, 0) when there are none (run ids
    grow with time: a span's runs are the ids from its first to its last)."""
    first, last = conn.execute("SELECT MIN(id), MAX(id) FROM runs WHERE started_at >= ? AND started_at < ?",
                               (start, end)).fetchone()
    return (1, 0) if first is None else (first, last)


def declared_spans(conn: sqlite3.Connection, container_ids: list[int], start: int,
                   end: int) -> dict[int, list[DeclaredSpan]]:
    """Container id -> its spans that overlap the runs started in [start, end), in order of their first run.
    A span begun before the window counts from the window's start (what it declared then)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'container_spans'").fetchone() is None:
        return {}  # TEMPORARY until lean storage lands: a schema without spans keeps no such history
    first_run, last_run = _run_range(conn, start, end)
    rows = conn.execute(
        "SELECT cs.container_id, cs.pod_id, CAST(COALESCE(r.started_at, :start) AS INTEGER),"
        " cs.cpu_request_millicores, cs.cpu_limit_millicores, cs.memory_request_bytes, cs.memory_limit_bytes"
        " FROM container_spans cs LEFT JOIN runs r ON r.id = cs.first_run_id"
        " WHERE cs.container_id IN (SELECT value FROM json_each(:ids))"
        " AND cs.first_run_id <= :last_run AND cs.last_run_id >= :first_run"
        " ORDER BY cs.container_id, cs.first_run_id, cs.id",
        {"ids": json.dumps(container_ids), "first_run": first_run, "last_run": last_run, "start": start})
    spans: dict[int, list[DeclaredSpan]] = {}
    for container_id, pod_id, first_ts, *declared in rows:
        spans.setdefault(container_id, []).append(DeclaredSpan(pod_id, max(start, first_ts), tuple(declared)))
    return spans


def impact_samples(conn: sqlite3.Connection, container_id: int, start: int, end: int) -> list[ImpactSample]:
    """The container's samples of the runs started in [start, end), oldest first; each pod's first one
    there has no previous restart count."""
    first_run, last_run = _run_range(conn, start, end)
    rows = conn.execute(
        "SELECT CAST(r.started_at AS INTEGER), cs.pod_id, cs.phase, s.cpu_usage_avg_millicores,"
        " s.memory_working_set_max_bytes, s.cpu_throttled_ratio, s.restart_count,"
        " LAG(s.restart_count) OVER (PARTITION BY cs.pod_id ORDER BY r.started_at, r.id),"
        " s.last_termination_reason, s.oom_events"
        " FROM container_spans cs CROSS JOIN runs r"
        " ON r.id BETWEEN MAX(cs.first_run_id, :first_run) AND MIN(cs.last_run_id, :last_run)"
        " CROSS JOIN samples s ON s.run_id = r.id AND s.span_id = cs.id"
        " WHERE cs.container_id = :container AND cs.first_run_id <= :last_run AND cs.last_run_id >= :first_run"
        " ORDER BY r.started_at, r.id, cs.pod_id",
        {"container": container_id, "first_run": first_run, "last_run": last_run})
    return [ImpactSample(*row) for row in rows]


def containers_with_new_spans(conn: sqlite3.Connection, since: float) -> list[int]:
    """The containers with a span begun by a run started at or after `since`: those whose requests or
    limits may have changed since (a new pod, an in-place resize, or just a phase)."""
    first_run, last_run = _run_range(conn, int(since), 2**62)
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT container_id FROM container_spans WHERE first_run_id BETWEEN ? AND ?",
        (first_run, last_run))]


def container_names(conn: sqlite3.Connection, container_ids: list[int]) -> dict[int, tuple[str, str, str, str]]:
    """Container id -> (namespace, workload kind, workload name, container name)."""
    return {row[0]: row[1:] for row in conn.execute(
        "SELECT c.id, w.namespace, w.kind, w.name, c.name FROM containers c JOIN workloads w ON w.id = c.workload_id"
        " WHERE c.id IN (SELECT value FROM json_each(?))", (json.dumps(container_ids),))}
