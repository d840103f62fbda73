"""A container's declared requests and limits over time, and its samples around a change: change impact's reads.

The container spans (shared/store/container_spans.py) hold what each pod's container declared, once
per span of runs, so the spans of a workload container in order of their first run say when its
requests or limits changed (index container_spans_container): finding changes reads spans, never
samples. Only for containers that changed are the samples read, in one read of the runs around
the changes, through the spans (SAMPLES_BY_SPAN), oldest first, each given its pod's previous restart count
so restarts are counted between samples. Spans go with their samples (RETENTION_RAW_DAYS):
changes older than the raw samples are not found, and the windows around a change stop at the oldest
raw sample (`raw_history_start`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.store.daily_rollups import SAMPLES_BY_SPAN, SPANS_OF_CONTAINERS, run_range
from shared.store.dialect import Connection

Declared = tuple[int | None, int | None, int | None, int | None]


@dataclass(frozen=True)
class DeclaredSpan:
    """One span of a pod's container: when it began and what it declared (CPU request and limit in
    millicores, memory request and limit in bytes; None where unset)."""

    pod_id: int
    first_ts: int
    declared: Declared


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


_SPANS = (
    "SELECT cs.container_id, cs.pod_id, CAST(COALESCE(r.started_at, :start) AS INTEGER),"
    " cs.cpu_request_millicores, cs.cpu_limit_millicores, cs.memory_request_bytes, cs.memory_limit_bytes"
    f" FROM container_spans cs LEFT JOIN runs r ON r.id = cs.first_run_id WHERE {SPANS_OF_CONTAINERS}"
    " ORDER BY cs.container_id, cs.first_run_id, cs.id")
_SAMPLES = (
    "SELECT cs.container_id, CAST(r.started_at AS INTEGER), cs.pod_id, cs.phase, s.cpu_usage_avg_millicores,"
    " s.memory_working_set_max_bytes, s.cpu_throttled_ratio, s.restart_count, s.last_termination_reason, s.oom_events"
    f" FROM {SAMPLES_BY_SPAN} WHERE {SPANS_OF_CONTAINERS} ORDER BY cs.container_id, r.id, cs.pod_id")
_CHANGED_SINCE = "SELECT DISTINCT container_id FROM container_spans WHERE first_run_id BETWEEN ? AND ?"
_NAMES = ("SELECT c.id, w.namespace, w.kind, w.name, c.name FROM containers c JOIN workloads w ON w.id = c.workload_id"
          " WHERE c.id IN (SELECT value FROM json_each(?))")


def declared_spans(conn: Connection, container_ids: list[int], start: int,
                   end: int) -> dict[int, list[DeclaredSpan]]:
    """Container id -> its spans that overlap the runs started in [start, end), in order of their first run.
    A span begun before the window counts from the window's start (what it declared then)."""
    first_run, last_run = run_range(conn, start, end)
    rows = conn.execute(_SPANS, {"ids": json.dumps(container_ids), "first_run": first_run, "last_run": last_run,
                                 "start": start})
    spans: dict[int, list[DeclaredSpan]] = {}
    for container_id, pod_id, first_ts, *declared in rows:
        spans.setdefault(container_id, []).append(DeclaredSpan(pod_id, max(start, first_ts), tuple(declared)))
    return spans


def impact_samples(conn: Connection, container_ids: list[int], start: int,
                   end: int) -> dict[int, list[ImpactSample]]:
    """Container id -> its samples of the runs started in [start, end), oldest first, in one read; each pod's
    first one there has no previous restart count."""
    first_run, last_run = run_range(conn, start, end)
    samples: dict[int, list[ImpactSample]] = {}
    previous: dict[int, int] = {}  # pod id -> its restart count in its newest sample so far
    for container_id, ts, pod_id, phase, cpu, memory, throttled, restarts, reason, oom_events in conn.execute(
            _SAMPLES, {"ids": json.dumps(container_ids), "first_run": first_run, "last_run": last_run}):
        samples.setdefault(container_id, []).append(ImpactSample(
            ts, pod_id, phase, cpu, memory, throttled, restarts, previous.get(pod_id), reason, oom_events))
        previous[pod_id] = restarts
    return samples


def raw_history_start(conn: Connection) -> int | None:
    """The time of the oldest raw sample (its run's start); None: there are none."""
    row = conn.execute("SELECT CAST(started_at AS INTEGER) FROM runs WHERE id = (SELECT MIN(run_id) FROM samples)"
                       ).fetchone()
    return None if row is None else row[0]


def containers_with_new_spans(conn: Connection, since: float) -> list[int]:
    """The containers with a span begun by a run started at or after `since`: those whose requests or
    limits may have changed since (a new pod, an in-place resize, or just a phase)."""
    return [row[0] for row in conn.execute(_CHANGED_SINCE, run_range(conn, int(since), 2**62))]


def container_names(conn: Connection, container_ids: list[int]) -> dict[int, tuple[str, str, str, str]]:
    """Container id -> (namespace, workload kind, workload name, container name)."""
    return {row[0]: row[1:] for row in conn.execute(_NAMES, (json.dumps(container_ids),))}
