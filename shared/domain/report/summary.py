"""The demo's one-screen summary: the report cut down to what a newcomer reads first.

`k8s-monitor demo` ends by telling the user to run `k8s-monitor report`, so its numbers are that
report's: the same default window (REPORT_WINDOW_DAYS), the same cluster totals (averages over the
window, every pod together) and the same per-pod figures. Only the cluster's size is a snapshot of
the newest successful run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.core.settings import Settings
from shared.domain.report.build import build_report
from shared.domain.report.figures import ContainerFigures
from shared.domain.report.query import parse_report_query
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN
from shared.store.snapshot import read_snapshot


@dataclass(frozen=True)
class ContainerFit:
    """One workload container's request against its use over the window, per pod (as the report)."""

    namespace: str
    workload: str  # Kind/name
    container: str
    cpu_request_millicores: int | None
    cpu_used_millicores: float | None  # average
    memory_request_bytes: int | None
    memory_used_bytes: float | None  # peak working set

    @property
    def pressure(self) -> float:
        """The larger of average CPU use / request and peak memory / request (above 1: under-provisioned)."""
        ratios = [0.0]
        if self.cpu_request_millicores and self.cpu_used_millicores is not None:
            ratios.append(self.cpu_used_millicores / self.cpu_request_millicores)
        if self.memory_request_bytes and self.memory_used_bytes is not None:
            ratios.append(self.memory_used_bytes / self.memory_request_bytes)
        return max(ratios)


@dataclass(frozen=True)
class Summary:
    """What the demo prints: cluster size and totals, and the worst over- and under-provisioned containers."""

    runs: int
    namespaces: int
    pods: int
    containers: int
    cpu_requested_millicores: float
    cpu_used_millicores: float
    memory_requested_bytes: float
    memory_used_bytes: float
    over_provisioned: list[ContainerFit]  # the report's first lines: most idle requested CPU first
    under_provisioned: list[ContainerFit]  # average CPU or peak memory above the request, worst first


def summarize(conn: Connection, settings: Settings, top: int = 5, now: float | None = None) -> Summary | None:
    """The summary of the default report; None before the first successful run. One snapshot: the
    cluster's size is that of the newest run the report counted."""
    now = time.time() if now is None else now
    with read_snapshot(conn):
        counts = conn.execute(
            f"SELECT COUNT(*), MAX(id) FROM runs WHERE {SUCCESSFUL_RUN}").fetchone()
        if not counts[0]:
            return None
        report = build_report(conn, parse_report_query({"limit": "all"}, settings, now), settings, now)
        pods, containers = conn.execute(
            "SELECT COUNT(DISTINCT cs.pod_id), COUNT(*) FROM samples s JOIN container_spans cs ON cs.id = s.span_id"
            " WHERE s.run_id = ? AND cs.phase = 'Running'",
            (counts[1],)).fetchone()
    fits = [(_fit(c), c) for c in report.containers]
    over = [fit for fit, c in fits if (c.cpu_idle_millicores or 0) > 0]
    under = sorted((fit for fit, _ in fits if fit.pressure > 1), key=lambda fit: -fit.pressure)
    t = report.cluster
    return Summary(counts[0], len(report.namespaces), pods, containers, t.cpu_requested_millicores,
                   t.cpu_used_millicores, t.memory_requested_bytes, t.memory_used_bytes, over[:top], under[:top])


def _fit(c: ContainerFigures) -> ContainerFit:
    return ContainerFit(c.namespace, f"{c.workload_kind}/{c.workload_name}", c.container, c.cpu_request_millicores,
                        c.cpu_usage_avg_millicores, c.memory_request_bytes, c.memory_working_set_max_bytes)
