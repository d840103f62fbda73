"""Stored history for the report tests: samples written with plain SQL into a real database.

The report reads what the collector writes; writing rows directly lets a test state every value it
expects, sample by sample.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

MiB = 1024**2


@dataclass
class Sample:
    """One raw sample (one pod's container at one collection); defaults are a healthy small container."""

    cpu_usage_avg_millicores: int | None = 100
    cpu_usage_max_millicores: int | None = 150
    memory_working_set_avg_bytes: int | None = 100 * MiB
    memory_working_set_max_bytes: int | None = 110 * MiB
    cpu_request_millicores: int | None = 500
    cpu_limit_millicores: int | None = 1000
    memory_request_bytes: int | None = 256 * MiB
    memory_limit_bytes: int | None = 512 * MiB
    cpu_throttled_ratio: float | None = 0.0
    restart_count: int = 0
    last_termination_reason: str | None = None
    oom_events: int | None = 0
    phase: str = "Running"
    pod: str = "pod-0"


@dataclass
class History:
    """Writes workloads, containers, pods, runs and samples; one run per distinct timestamp."""

    conn: sqlite3.Connection
    _runs: dict[int, int] = field(default_factory=dict)
    _pods: dict[tuple[int, str], int] = field(default_factory=dict)

    def container(self, namespace: str, kind: str, workload: str, container: str) -> int:
        self.conn.execute("INSERT OR IGNORE INTO workloads (namespace, kind, name) VALUES (?, ?, ?)",
                          (namespace, kind, workload))
        workload_id = self.conn.execute("SELECT id FROM workloads WHERE namespace = ? AND kind = ? AND name = ?",
                                        (namespace, kind, workload)).fetchone()[0]
        self.conn.execute("INSERT OR IGNORE INTO containers (workload_id, name) VALUES (?, ?)", (workload_id, container))
        return self.conn.execute("SELECT id FROM containers WHERE workload_id = ? AND name = ?",
                                 (workload_id, container)).fetchone()[0]

    def add(self, container_id: int, ts: int, sample: Sample) -> None:
        run_id = self._run(ts)
        pod_id = self._pod(container_id, sample.pod, ts)
        s = sample
        self.conn.execute(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, container_id, pod_id, ts, s.phase, s.cpu_request_millicores, s.cpu_limit_millicores,
             s.memory_request_bytes, s.memory_limit_bytes, s.cpu_usage_avg_millicores, s.cpu_usage_max_millicores,
             s.memory_working_set_avg_bytes, s.memory_working_set_max_bytes, s.cpu_throttled_ratio,
             s.restart_count, s.last_termination_reason, s.oom_events),
        )

    def _run(self, ts: int) -> int:
        if ts not in self._runs:
            self._runs[ts] = self.conn.execute(
                "INSERT INTO runs (trigger, started_at, finished_at, status, window_seconds)"
                " VALUES ('cli', ?, ?, 'ok', 300)", (ts, ts + 1)).lastrowid
        return self._runs[ts]

    def _pod(self, container_id: int, pod: str, ts: int) -> int:
        key = (container_id, pod)
        if key not in self._pods:
            workload_id = self.conn.execute("SELECT workload_id FROM containers WHERE id = ?",
                                            (container_id,)).fetchone()[0]
            self._pods[key] = self.conn.execute(
                "INSERT INTO pods (uid, workload_id, name, last_seen) VALUES (?, ?, ?, ?)",
                (f"uid-{container_id}-{pod}", workload_id, pod, ts)).lastrowid
        return self._pods[key]
