"""Building a report: every selected container's figures, the totals at each level, then the order
and limit of the query, with the listed containers explained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.core.settings import Settings
from shared.domain.report.explained import ExplainedContainer, explain
from shared.domain.report.figures import Totals, container_figures
from shared.domain.report.query import SORTS, ReportQuery
from shared.domain.rightsizing import RightsizingPolicy
from shared.store.dialect import Connection
from shared.store.runs import WindowRuns, window_runs
from shared.store.snapshot import read_snapshot
from shared.store.window_usage import read_window_usage

NO_DATA = "no collection succeeded in this window: run one (`k8s-monitor collect`), or see `k8s-monitor health`"


@dataclass
class Report:
    """One report: the query it answers, the totals at each level and the listed containers."""

    query: ReportQuery
    cluster_name: str  # CLUSTER_NAME
    generated_at: float
    covered_seconds: int  # the time the window's successful runs covered; 0: none (NO_DATA)
    policy: RightsizingPolicy
    sources: list[tuple[str, int, int]]
    cluster: Totals
    namespaces: dict[str, Totals]
    workloads: dict[str, Totals]  # "namespace/Kind/name" of the listed containers
    containers: list[ExplainedContainer]  # sorted, at most query.limit
    containers_total: int
    runs: WindowRuns  # the window's runs: their warnings (data quality) and Prometheus cost


def build_report(conn: Connection, query: ReportQuery, settings: Settings, now: float | None = None) -> Report:
    """Every selected container's line, the totals, then the order and limit of the query. Its reads are
    one snapshot (or part of the caller's, who reads more of the same state)."""
    generated_at = time.time() if now is None else now
    with read_snapshot(conn):
        usage = read_window_usage(conn, query.window, query.selection)
        runs = window_runs(conn, query.window.start, query.window.end)
    covered = usage.covered
    policy = RightsizingPolicy.from_settings(settings)
    rows = [container_figures(c, covered.seconds_for(c.identity.namespace), settings) for c in usage.containers]
    cluster = Totals()
    namespaces: dict[str, Totals] = {}
    workloads: dict[str, Totals] = {}
    for row in rows:
        cluster.add(row)
        namespaces.setdefault(row.namespace, Totals()).add(row)
        workloads.setdefault(row.workload, Totals()).add(row)
    key = SORTS[query.sort][0]
    rows.sort(key=lambda c: (key(c), c.name_key))
    listed = [explain(row, covered.seconds_for(row.namespace), policy)
              for row in (rows if query.limit is None else rows[:query.limit])]
    listed_workloads = {c.workload: workloads[c.workload] for c in listed}
    return Report(query, settings.cluster_name, generated_at, covered.seconds, policy, usage.sources, cluster,
                  dict(sorted(namespaces.items())), listed_workloads, listed, len(rows), runs)
