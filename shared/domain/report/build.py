"""Building a report: every selected container's figures and assessment (recommendation, money), the totals
at each level and per group, then the order and limit of the query, with the listed containers explained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.core.settings import Settings
from shared.domain.change_impact import container_changes
from shared.domain.costs import Prices
from shared.domain.patches import SkippedWorkload, WorkloadPatch, workload_patches
from shared.domain.report.context import ReportContext
from shared.domain.report.explained import ExplainedContainer, assess, explain
from shared.domain.report.figures import Totals, container_figures
from shared.domain.report.query import SORTS, ReportQuery
from shared.domain.rightsizing import RightsizingPolicy
from shared.store.dialect import Connection
from shared.store.runs import WindowRuns, window_runs
from shared.store.snapshot import read_snapshot
from shared.store.window_usage import WindowUsage, read_window_usage

NO_DATA = "no collection succeeded in this window: run one (`k8s-monitor collect`), or see `k8s-monitor health`"
NO_GROUP = "(none)"  # the group of workloads without the REPORT_GROUP_BY_LABEL label (not a label value)


@dataclass
class Report:
    """One report: the query it answers, the totals at each level and the listed containers."""

    query: ReportQuery
    cluster_name: str  # CLUSTER_NAME
    generated_at: float
    covered_seconds: int  # the time the window's successful runs covered; 0: none (NO_DATA)
    policy: RightsizingPolicy  # the REPORT_* defaults (a workload's annotations may change its own)
    sources: list[tuple[str, int, int]]
    cluster: Totals
    namespaces: dict[str, Totals]
    workloads: dict[str, Totals]  # "namespace/Kind/name" of the listed containers
    containers: list[ExplainedContainer]  # sorted, at most query.limit
    containers_total: int
    runs: WindowRuns  # the window's runs: their warnings (data quality) and Prometheus cost
    prices: Prices
    group_label: str | None = None  # REPORT_GROUP_BY_LABEL
    groups: dict[str, Totals] = field(default_factory=dict)  # by its value; NO_GROUP for workloads without it
    hpa_error: str | None = None  # why the newest run could not list HPAs (recommendations could not allow for them)
    patches: list[WorkloadPatch] = field(default_factory=list)  # of the listed containers' workloads, in order
    patches_skipped: list[SkippedWorkload] = field(default_factory=list)  # workloads with changes but no patch


def build_report(conn: Connection, query: ReportQuery, settings: Settings, now: float | None = None) -> Report:
    """Every selected container's line, the totals, then the order and limit of the query. Its reads are
    one snapshot (or part of the caller's, who reads more of the same state)."""
    generated_at = time.time() if now is None else now
    with read_snapshot(conn):
        usage = read_window_usage(conn, query.window, query.selection)
        runs = window_runs(conn, query.window.start, query.window.end)
        ctx = ReportContext.read(conn, query.window, usage.covered,
                                 [c.identity.container_id for c in usage.containers], settings)
        return _report(conn, query, settings, generated_at, usage, runs, ctx)


def _report(conn: Connection, query: ReportQuery, settings: Settings, generated_at: float, usage: WindowUsage,
            runs: WindowRuns, ctx: ReportContext) -> Report:
    covered = usage.covered
    rows = [assess(container_figures(c, covered.seconds_for(c.identity.namespace), settings), ctx)
            for c in usage.containers]
    cluster = Totals()
    namespaces: dict[str, Totals] = {}
    groups: dict[str, Totals] = {}
    for row in rows:
        cluster.add(row)
        namespaces.setdefault(row.namespace, Totals()).add(row)
        if ctx.group_label is not None:
            groups.setdefault(row.group or NO_GROUP, Totals()).add(row)
    if query.limit != 0:  # 0: the totals alone (the fleet's rows)
        key = SORTS[query.sort][0]
        rows.sort(key=lambda c: (key(c), c.name_key))
    listed = rows if query.limit is None else rows[:query.limit]
    workloads: dict[str, Totals] = {c.workload: Totals() for c in listed}  # the totals of the listed ones only
    if workloads:
        for row in rows:
            totals = workloads.get(row.workload)
            if totals is not None:
                totals.add(row)
    changes = container_changes(conn, [c.container_id for c in listed], query.window.start, query.window.end,
                                round(settings.report_change_window_hours * 3600), settings.alert_cpu_throttled_ratio)
    for c in listed:
        c.change_impacts = changes.get(c.container_id, [])
        explain(c, ctx)
    patches, skipped = workload_patches(listed)
    return Report(query, settings.cluster_name, generated_at, covered.seconds, ctx.defaults, usage.sources, cluster,
                  dict(sorted(namespaces.items())), workloads, listed, len(rows), runs, ctx.prices,
                  ctx.group_label, dict(sorted(groups.items())), ctx.hpa_error, patches, skipped)
