"""The report's resource figures as Prometheus gauges, for the resource dashboard (grafana-resources.json).

At each scrape the default report (REPORT_WINDOW_DAYS, every namespace) is built from the database
by the report code itself (shared/domain/report/build.py), inside the scrape's one read snapshot,
so Grafana shows the numbers of the page and the CLI. Cardinality is bounded: per namespace the
requested, used and idle CPU (cores) and memory (bytes), the containers counted and, per risk
flag, the containers flagged (zero included, so sums stay continuous); per namespace and for the
cluster, the idle cost, the savings and the cost of fixing risks a month in CURRENCY (the costs
module's totals, shared/domain/costs.py: savings leave out gone, ignored and REPORT_SAVINGS_EXCLUDE
workloads, as the report's totals do). Per workload container the
current and recommended requests only with METRICS_WORKLOAD_GAUGES=true, at most
METRICS_WORKLOAD_GAUGES_MAX series, the containers with the largest share of the cluster's
requests first; `report_workload_series_dropped` says how many were left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from prometheus_client.core import GaugeMetricFamily, Metric

from shared.core.settings import Settings
from shared.domain.errors import InvalidInput
from shared.domain.report.build import Report, build_report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.flags import FLAG_LABELS
from shared.domain.report.query import parse_report_query
from shared.store.dialect import Connection

MILLICORES_PER_CORE = 1000
# (metric, documentation, the Totals attribute, what it divides by for the metric's unit)
NAMESPACE_GAUGES = (
    ("report_cpu_requested_cores", "CPU requested by the namespace's workload containers, every pod together",
     "cpu_requested_millicores", MILLICORES_PER_CORE),
    ("report_cpu_used_cores", "CPU used by the namespace's workload containers, every pod together",
     "cpu_used_millicores", MILLICORES_PER_CORE),
    ("report_cpu_idle_cores", "CPU requested but not used (per container never below zero), every pod together",
     "cpu_idle_millicores", MILLICORES_PER_CORE),
    ("report_memory_requested_bytes", "Memory requested by the namespace's workload containers, every pod together",
     "memory_requested_bytes", 1),
    ("report_memory_used_bytes", "Memory working set of the namespace's workload containers, every pod together",
     "memory_used_bytes", 1),
    ("report_memory_idle_bytes", "Memory requested but not used (per container never below zero), every pod together",
     "memory_idle_bytes", 1),
)
# (metric, documentation, per-pod value of a listed container, what it divides by)
WORKLOAD_GAUGES = (
    ("report_workload_cpu_request_cores", "CPU request of a workload container, per pod (the newest)",
     lambda c: c.cpu_request_millicores, MILLICORES_PER_CORE),
    ("report_workload_cpu_recommended_cores", "Recommended CPU request of a workload container, per pod",
     lambda c: c.recommendation.cpu_request_millicores, MILLICORES_PER_CORE),
    ("report_workload_memory_request_bytes", "Memory request of a workload container, per pod (the newest)",
     lambda c: c.memory_request_bytes, 1),
    ("report_workload_memory_recommended_bytes", "Recommended memory request and limit of a workload container, "
     "per pod", lambda c: c.recommendation.memory_request_bytes, 1),
)
# (metric suffix, documentation, the CostTotals attribute): per namespace `report_<suffix>`, for the cluster
# `report_cluster_<suffix>`, labelled with the currency (CURRENCY)
MONEY_GAUGES = (
    ("idle_cost_per_month", "What requested but unused CPU and memory cost a month (PRICE_* settings)",
     "idle_per_month"),
    ("savings_per_month", "What applying the recommendations would save a month (lowered requests only; gone, "
     "ignored and REPORT_SAVINGS_EXCLUDE workloads left out)", "savings_per_month"),
    ("cost_to_fix_risk_per_month", "What applying the recommendations that raise requests would cost a month",
     "cost_to_fix_risk_per_month"),
)
_WINDOW = " over the default report window (REPORT_WINDOW_DAYS), averaged"


def resource_families(conn: Connection, settings: Settings, now: float) -> Iterator[Metric]:
    """The gauges of the default report as of `now`, read on `conn` (inside the caller's snapshot); none
    when the settings ask for a report window the history cannot hold (the report says why)."""
    try:
        query = parse_report_query({}, settings, now)
    except InvalidInput:
        return
    gauges = settings.metrics_workload_gauges
    # Recommendations cost the most: only listed containers get them, so list none without gauges.
    report = build_report(conn, replace(query, limit=None if gauges else 0), settings, now)
    yield _single("report_window_covered_seconds", "Seconds of the default report window with successful "
                  "collections; 0: none, and the report_* figures are empty", report.covered_seconds)
    yield from _namespace_families(report)
    yield from _money_families(report)
    if gauges:
        yield from _workload_families(report, settings.metrics_workload_gauges_max)


def _namespace_families(report: Report) -> Iterator[Metric]:
    containers = GaugeMetricFamily("report_containers", "Workload containers with samples in the default report "
                                   "window", labels=["namespace"])
    for namespace, totals in report.namespaces.items():
        containers.add_metric([namespace], totals.containers)
    yield containers
    for name, documentation, attribute, divisor in NAMESPACE_GAUGES:
        family = GaugeMetricFamily(name, documentation + _WINDOW, labels=["namespace"])
        for namespace, totals in report.namespaces.items():
            family.add_metric([namespace], getattr(totals, attribute) / divisor)
        yield family
    flags = GaugeMetricFamily("report_risk_flags", "Workload containers flagged in the default report window, by "
                              "flag (oom_killed, cpu_throttled, memory_near_limit, no_requests, no_limits)",
                              labels=["namespace", "flag"])
    for namespace, totals in report.namespaces.items():
        for flag in FLAG_LABELS:
            flags.add_metric([namespace, flag], totals.flags.get(flag, 0))
    yield flags


def _money_families(report: Report) -> Iterator[Metric]:
    """Idle cost, savings and the cost of fixing risks a month, per namespace and for the cluster."""
    currency = report.prices.currency
    for suffix, documentation, attribute in MONEY_GAUGES:
        family = GaugeMetricFamily(f"report_{suffix}", f"{documentation}, per namespace{_WINDOW}",
                                   labels=["namespace", "currency"])
        for namespace, totals in report.namespaces.items():
            family.add_metric([namespace, currency], getattr(totals.costs, attribute))
        yield family
        cluster = GaugeMetricFamily(f"report_cluster_{suffix}", f"{documentation}, the whole cluster{_WINDOW}",
                                    labels=["currency"])
        cluster.add_metric([currency], getattr(report.cluster.costs, attribute))
        yield cluster


def _workload_families(report: Report, max_series: int) -> Iterator[Metric]:
    """Current and recommended requests per workload container, the largest first, at most `max_series`."""
    families = [(GaugeMetricFamily(name, documentation, labels=["namespace", "workload", "container"]), value, divisor)
                for name, documentation, value, divisor in WORKLOAD_GAUGES]
    cluster = report.cluster
    sized = sorted(report.containers, key=lambda c: (-_share(c, cluster.cpu_requested_millicores,
                                                             cluster.memory_requested_bytes), c.name_key))
    emitted = dropped = 0
    for c in sized:
        labels = [c.namespace, f"{c.workload_kind}/{c.workload_name}", c.container]
        values = [(family, value(c) / divisor) for family, value, divisor in families if value(c) is not None]
        if dropped or emitted + len(values) > max_series:
            dropped += len(values)
            continue
        for family, number in values:
            family.add_metric(labels, number)
        emitted += len(values)
    yield from (family for family, _, _ in families)
    yield _single("report_workload_series_dropped", "Workload container series left out by "
                  "METRICS_WORKLOAD_GAUGES_MAX (the smallest containers); 0: none", dropped)


def _share(c: ExplainedContainer, cpu_total: float, memory_total: float) -> float:
    """The container's part of the cluster's requests: CPU and memory shares added."""
    return ((c.cpu_requested_avg_millicores / cpu_total if cpu_total else 0)
            + (c.memory_requested_avg_bytes / memory_total if memory_total else 0))


def _single(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family
