"""Container spans: what a pod's container declares, and its pod's phase, stored once for all the runs that saw it.

Requests, limits and phase change a few times in a pod's life if ever (an in-place resize, Pending
to Running to Succeeded), so a sample does not repeat them: it names its span, one
`container_spans` row per pod's container and state, from the first to the last run that saw that
state. A pod's container has one span at a time: while runs see the same state, its newest span goes
on (last_run_id moves to the newest run, one UPDATE per run for all of them); when the state
differs, a new span starts. So the spans of a workload container ordered by first_run_id say when
its requests or limits changed, old and new (index container_spans_container), and every sample of
a span is in a run with an id from first_run_id to last_run_id.

Node, QoS class and workload are the pod's, fixed for its life by Kubernetes: they stay in `pods`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shared.store.dialect import Connection

STATE = ("phase", "cpu_request_millicores", "cpu_limit_millicores", "memory_request_bytes", "memory_limit_bytes")
State = tuple[str, int | None, int | None, int | None, int | None]  # the STATE columns, in that order

_COLUMNS = ("id", "pod_id", "container_id", "first_run_id", "last_run_id", *STATE)
_INSERT = f"INSERT INTO container_spans ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


class SpanBook:
    """The newest span of each container of the given pods, and the spans to write for the runs observed.

    Observe runs in the order of their ids (a collection observes its one run), then `write` the spans
    in the same transaction, before the samples that name them.
    """

    def __init__(self, conn: Connection, pod_ids: Iterable[int]):
        self._conn = conn
        # (pod, container) -> (span id, last run id, *state) of its newest span: the index gives each
        # pod's container's spans in id order, and ids grow, so the last one read is the newest.
        self._newest: dict[tuple[int, int], tuple] = {(row[0], row[1]): row[2:] for row in conn.execute(
            f"SELECT pod_id, container_id, id, last_run_id, {', '.join(STATE)} FROM container_spans"
            " WHERE pod_id IN (SELECT value FROM json_each(?)) ORDER BY pod_id, container_id, id",
            (json.dumps(list(pod_ids)),))}
        self._next_id: int = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM container_spans").fetchone()[0]
        self._started: dict[int, list] = {}  # new span id -> its row (_COLUMNS)
        self._continued: dict[int, int] = {}  # stored span id -> its new last run id

    def span_id(self, run_id: int, pod_id: int, container_id: int, state: State) -> int:
        """The span of this pod's container in this run: its newest span when the state is the same, else a new one."""
        key = (pod_id, container_id)
        newest = self._newest.get(key)
        if newest is not None and newest[1] < run_id and newest[2:] == state:
            span_id = newest[0]
            if span_id in self._started:
                self._started[span_id][4] = run_id
            else:
                self._continued[span_id] = run_id
        else:
            span_id, self._next_id = self._next_id, self._next_id + 1
            self._started[span_id] = [span_id, pod_id, container_id, run_id, run_id, *state]
        self._newest[key] = (span_id, run_id, *state)
        return span_id

    def write(self) -> None:
        """Insert the new spans, and move the last run of those that went on: one UPDATE per run."""
        self._conn.executemany(_INSERT, self._started.values())
        by_run: dict[int, list[int]] = {}
        for span_id, run_id in self._continued.items():
            by_run.setdefault(run_id, []).append(span_id)
        for run_id, span_ids in by_run.items():
            self._conn.execute("UPDATE container_spans SET last_run_id = ?"
                               " WHERE id IN (SELECT value FROM json_each(?))", (run_id, json.dumps(span_ids)))
        self._started, self._continued = {}, {}
