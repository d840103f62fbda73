"""A cluster-wide summary of the stored history: what is requested, what is used, where it is off.

Used by `k8s-monitor demo` to show a newcomer the product's point in one screen.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerFit:
    """How one workload container's request compares with its use over the stored runs."""

    namespace: str
    workload: str
    container: str
    cpu_request_millicores: int | None
    cpu_used_millicores: float | None
    memory_request_bytes: int | None
    memory_used_bytes: float | None  # max working set

    @property
    def idle_cpu_millicores(self) -> float:
        return (self.cpu_request_millicores or 0) - (self.cpu_used_millicores or 0)

    @property
    def pressure(self) -> float:
        """The larger of CPU use/request and peak memory/request (above 1: under-provisioned)."""
        ratios = [0.0]
        if self.cpu_request_millicores and self.cpu_used_millicores is not None:
            ratios.append(self.cpu_used_millicores / self.cpu_request_millicores)
        if self.memory_request_bytes and self.memory_used_bytes is not None:
            ratios.append(self.memory_used_bytes / self.memory_request_bytes)
        return max(ratios)


@dataclass(frozen=True)
class Summary:
    runs: int
    namespaces: int
    pods: int
    containers: int
    cpu_requested_millicores: int
    cpu_used_millicores: float
    memory_requested_bytes: int
    memory_used_bytes: float
    over_provisioned: list[ContainerFit]
    under_provisioned: list[ContainerFit]


def summarize(conn: sqlite3.Connection, top: int = 5) -> Summary | None:
    """Totals of the latest stored run and the containers furthest off over all raw history."""
    last = conn.execute(
        "SELECT id FROM runs WHERE status IN ('ok', 'partial') ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    if last is None:
        return None
    runs = conn.execute("SELECT count(*) FROM runs WHERE status IN ('ok', 'partial')").fetchone()[0]
    totals = conn.execute(
        """
        SELECT count(DISTINCT w.namespace), count(DISTINCT s.pod_id), count(*),
               coalesce(sum(s.cpu_request_millicores), 0), coalesce(sum(s.cpu_usage_avg_millicores), 0),
               coalesce(sum(s.memory_request_bytes), 0), coalesce(sum(s.memory_working_set_avg_bytes), 0)
        FROM samples s JOIN containers c ON c.id = s.container_id JOIN workloads w ON w.id = c.workload_id
        WHERE s.run_id = ? AND s.phase = 'Running'
        """,
        (last[0],),
    ).fetchone()
    fits = [
        ContainerFit(*row)
        for row in conn.execute(
            """
            SELECT w.namespace, w.kind || '/' || w.name, c.name,
                   max(s.cpu_request_millicores), avg(s.cpu_usage_avg_millicores),
                   max(s.memory_request_bytes), max(s.memory_working_set_max_bytes)
            FROM samples s JOIN containers c ON c.id = s.container_id JOIN workloads w ON w.id = c.workload_id
            WHERE s.phase = 'Running'
            GROUP BY s.container_id
            """
        )
    ]
    over = sorted((f for f in fits if f.idle_cpu_millicores > 0), key=lambda f: -f.idle_cpu_millicores)
    under = sorted((f for f in fits if f.pressure > 1), key=lambda f: -f.pressure)
    return Summary(runs, *totals, over[:top], under[:top])
