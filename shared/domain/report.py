"""The report: per container, workload, namespace and cluster, what is requested against what is used.

For each workload container over the window: requests and limits (the newest), CPU usage (average,
percentile, peak) and memory working set (average, peak) per pod, idle requested CPU and memory
(request minus average use, times the pods running on average), risk flags, and the rightsizing
recommendation (shared/domain/rightsizing.py). Each figure has a `reasons` entry saying where it comes from.
Workload, namespace and cluster totals add up their containers.

The same Report is rendered as JSON and CSV (here), a terminal table (shared/cli/report.py) and an
HTML page (shared/domain/report_page.py).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shared.core.settings import Settings
from shared.core.timeutil import iso_utc, utc_minute
from shared.domain.errors import InvalidInput
from shared.domain.rightsizing import (
    Recommendation,
    RightsizingPolicy,
    UsageEvidence,
    format_bytes,
    format_millicores,
    format_span,
    percentile_label,
    recommend,
)
from shared.store.histograms import MAX_RELATIVE_ERROR
from shared.store.window_usage import (
    ContainerWindowUsage,
    Selection,
    Window,
    WindowError,
    parse_window,
    read_window_usage,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
FORMATS = ("json", "csv", "html")


def _name_key(c: ContainerReport) -> tuple:
    return (c.namespace, c.workload_kind, c.workload_name, c.container)


# sort name -> (key, what it puts first); ties are broken by name.
SORTS: dict[str, tuple[Callable[[ContainerReport], float], str]] = {
    "idle_cpu": (lambda c: -(c.cpu_idle_millicores or 0), "most idle requested CPU first"),
    "idle_memory": (lambda c: -(c.memory_idle_bytes or 0), "most idle requested memory first"),
    "cpu_usage": (lambda c: -(c.cpu_usage_p95_millicores or 0), "highest CPU p95 first"),
    "memory_usage": (lambda c: -(c.memory_working_set_max_bytes or 0), "highest memory peak first"),
    "cpu_request": (lambda c: -(c.cpu_request_millicores or 0), "largest CPU request first"),
    "memory_request": (lambda c: -(c.memory_request_bytes or 0), "largest memory request first"),
    "risk": (lambda c: -len(c.flags), "most risk flags first"),
    "name": (lambda c: 0, "namespace, workload, container"),
}
DEFAULT_SORT = "idle_cpu"


@dataclass(frozen=True)
class ReportQuery:
    """What to report: the window, the filters, the order and how many containers to list."""

    window: Window
    namespace: str | None = None
    workload: str | None = None
    sort: str = DEFAULT_SORT
    limit: int | None = DEFAULT_LIMIT  # None: every container

    @property
    def selection(self) -> Selection:
        """The namespace and workload filters, as the usage reader takes them."""
        return Selection(self.namespace, self.workload)


def parse_report_query(
    params: Mapping[str, str], settings: Settings, now: float, default_limit: int | None = DEFAULT_LIMIT,
    extra: tuple[str, ...] = (),
) -> ReportQuery:
    """Query parameters (namespace, workload, window, sort, limit, and `extra` ones the caller reads)
    into a ReportQuery, or InvalidInput naming the parameter. The window defaults to REPORT_WINDOW_DAYS."""
    unknown = sorted(set(params) - {"namespace", "workload", "window", "sort", "limit", *extra})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown parameter; use namespace, workload, window, sort, limit"
                         + "".join(f", {name}" for name in extra))
    max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    try:
        window = parse_window(params.get("window") or f"{settings.report_window_days:g}d", now, max_days)
    except WindowError as exc:
        raise InvalidInput(f"window: {exc}") from None
    sort = params.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise InvalidInput(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    return ReportQuery(window, _name(params, "namespace"), _name(params, "workload"), sort,
                       _limit(params.get("limit"), default_limit))


def _name(params: Mapping[str, str], parameter: str) -> str | None:
    value = params.get(parameter)
    if value is None or value == "":
        return None
    if len(value) > 253 or any(ch.isspace() for ch in value):
        raise InvalidInput(f"{parameter}: {value[:80]!r} is not a Kubernetes name")
    return value


def _limit(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    if value == "all":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(f"limit: {value[:20]!r} is not a number from 1 to {MAX_LIMIT} (or 'all')")
    return int(value)


FLAG_LABELS = {"oom_killed": "OOM-killed", "cpu_throttled": "CPU throttled", "memory_near_limit": "memory near limit",
               "no_requests": "no requests", "no_limits": "no limits"}


@dataclass
class Flag:
    """A risk: `flag` is its stable name (oom_killed, cpu_throttled, ...), `reason` says what was seen."""

    flag: str
    reason: str


@dataclass
class ContainerReport:
    """One workload container's line of the report; None where the window has no data for a figure.

    The percentile, the recommendation and the reasons cost the most to compute, so `explain` adds
    them to the listed lines only (the totals and most orders do not need them)."""

    usage: ContainerWindowUsage = field(repr=False)
    namespace: str
    workload_kind: str
    workload_name: str
    container: str
    cpu_samples: int
    memory_samples: int
    pods_avg: float | None
    cpu_request_millicores: int | None
    cpu_limit_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None
    cpu_usage_avg_millicores: float | None
    cpu_usage_max_millicores: int | None
    cpu_requested_avg_millicores: float  # every pod together, averaged over the window
    cpu_used_avg_millicores: float
    cpu_idle_millicores: float | None
    memory_working_set_avg_bytes: float | None
    memory_working_set_max_bytes: int | None
    memory_requested_avg_bytes: float
    memory_used_avg_bytes: float
    memory_idle_bytes: float | None
    cpu_throttled_ratio_max: float | None
    restart_count_max: int | None
    oom_terminations: bool  # a sample's last termination reason was OOMKilled
    oom_events: int  # container_oom_events_total increases
    flags: list[Flag] = field(default_factory=list)
    cpu_usage_p95_millicores: float | None = None
    recommendation: Recommendation | None = None
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def container_id(self) -> int:
        """The container's row id in the database, stable across pods and runs."""
        return self.usage.identity.container_id

    @property
    def workload(self) -> str:
        """The owning workload as `namespace/Kind/name`, the key of the workload totals."""
        return f"{self.namespace}/{self.workload_kind}/{self.workload_name}"

    @property
    def oom_killed(self) -> bool:
        """Whether the container ran out of memory in the window, by termination reason or OOM event."""
        return self.oom_terminations or self.oom_events > 0


@dataclass
class Totals:
    """Requested, used and idle resources of a group of containers, averaged over the window."""

    containers: int = 0
    cpu_requested_millicores: float = 0.0
    cpu_used_millicores: float = 0.0
    cpu_idle_millicores: float = 0.0
    memory_requested_bytes: float = 0.0
    memory_used_bytes: float = 0.0
    memory_idle_bytes: float = 0.0
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, c: ContainerReport) -> None:
        """Count `c` into these totals: its requested, used and idle resources and its flags."""
        self.containers += 1
        self.cpu_requested_millicores += c.cpu_requested_avg_millicores
        self.cpu_used_millicores += c.cpu_used_avg_millicores
        self.cpu_idle_millicores += c.cpu_idle_millicores or 0
        self.memory_requested_bytes += c.memory_requested_avg_bytes
        self.memory_used_bytes += c.memory_used_avg_bytes
        self.memory_idle_bytes += c.memory_idle_bytes or 0
        for flag in c.flags:
            self.flags[flag.flag] = self.flags.get(flag.flag, 0) + 1


NO_DATA = "no collection succeeded in this window: run one (`k8s-monitor collect`), or see `k8s-monitor health`"


@dataclass
class Report:
    """One report: the query it answers, the totals at each level and the listed containers."""

    query: ReportQuery
    generated_at: float
    span_seconds: int  # the part of the window with data; 0: none (NO_DATA)
    interval_seconds: int
    policy: RightsizingPolicy
    sources: list[tuple[str, int, int]]
    cluster: Totals
    namespaces: dict[str, Totals]
    workloads: dict[str, Totals]  # "namespace/Kind/name" of the listed containers
    containers: list[ContainerReport]  # sorted, at most query.limit
    containers_total: int


def build_report(conn: sqlite3.Connection, query: ReportQuery, settings: Settings, now: float | None = None) -> Report:
    """Every selected container's line, the totals, then the order and limit of the query."""
    generated_at = time.time() if now is None else now
    usage = read_window_usage(conn, query.window, query.selection)
    span = usage.span_seconds
    policy = RightsizingPolicy.from_settings(settings)
    rows = [container_report(c, span, settings) for c in usage.containers]
    cluster, namespaces, workloads = Totals(), {}, {}
    for row in rows:
        cluster.add(row)
        namespaces.setdefault(row.namespace, Totals()).add(row)
        workloads.setdefault(row.workload, Totals()).add(row)
    if query.sort == "cpu_usage":
        for row in rows:
            row.cpu_usage_p95_millicores = row.usage.cpu_percentile_millicores(95)
    key = SORTS[query.sort][0]
    rows.sort(key=lambda c: (key(c), _name_key(c)))
    listed = rows if query.limit is None else rows[:query.limit]
    for row in listed:
        explain(row, span, settings, policy)
    listed_workloads = {c.workload: workloads[c.workload] for c in listed}
    return Report(query, generated_at, span, settings.collect_interval_seconds, policy, usage.sources, cluster,
                  dict(sorted(namespaces.items())), listed_workloads, listed, len(rows))


def container_report(c: ContainerWindowUsage, span_seconds: int, settings: Settings) -> ContainerReport:
    """One container's figures and risk flags (averages over time divide by `span_seconds`)."""
    interval = settings.collect_interval_seconds
    ident = c.identity
    cpu_n, memory_n = c.cpu_usage_samples, c.memory_working_set_samples
    cpu_requested = c.cpu_requested_sum_millicores * interval / span_seconds
    cpu_used = c.cpu_usage_sum_millicores * interval / span_seconds
    memory_requested = c.memory_requested_sum_bytes * interval / span_seconds
    memory_used = c.memory_working_set_sum_bytes * interval / span_seconds
    row = ContainerReport(
        c, ident.namespace, ident.workload_kind, ident.workload_name, ident.container, cpu_n, memory_n,
        cpu_n * interval / span_seconds if cpu_n else None,
        c.cpu_request_millicores, c.cpu_limit_millicores, c.memory_request_bytes, c.memory_limit_bytes,
        c.cpu_usage_sum_millicores / cpu_n if cpu_n else None, c.cpu_usage_max_millicores, cpu_requested, cpu_used,
        max(0.0, cpu_requested - cpu_used) if cpu_n else None,
        c.memory_working_set_sum_bytes / memory_n if memory_n else None, c.memory_working_set_max_bytes,
        memory_requested, memory_used, max(0.0, memory_requested - memory_used) if memory_n else None,
        c.cpu_throttled_ratio_max, c.restart_count_max, c.oom_killed_samples > 0, c.oom_events_sum,
    )
    row.flags = risk_flags(row, settings)
    return row


def explain(row: ContainerReport, span_seconds: int, settings: Settings, policy: RightsizingPolicy) -> None:
    """Add the CPU p95, the recommendation and the reason behind every figure to a listed line."""
    c = row.usage
    if row.cpu_usage_p95_millicores is None:
        row.cpu_usage_p95_millicores = c.cpu_percentile_millicores(95)
    percentile = (row.cpu_usage_p95_millicores if policy.cpu_percentile == 95
                  else c.cpu_percentile_millicores(policy.cpu_percentile))
    row.recommendation = recommend(
        UsageEvidence(span_seconds, row.cpu_samples, percentile, c.cpu_percentile_exact, row.memory_samples,
                      c.memory_working_set_max_bytes),
        policy)
    row.reasons = _reasons(row, c, format_span(span_seconds), settings.collect_interval_seconds, span_seconds)


def risk_flags(c: ContainerReport, settings: Settings) -> list[Flag]:
    """OOMKilled, CPU throttled, memory near its limit, missing requests, missing limits."""
    flags = []
    if c.oom_killed:
        # Kubernetes keeps lastState.terminated until the next termination, so the reason alone may
        # describe a kill from before the window; OOM events are counted inside it.
        seen = [f"{c.oom_events} OOM events in the window" if c.oom_events else "",
                "last termination reason OOMKilled (kept by Kubernetes until the next restart, so it may be older)"
                if c.oom_terminations else "",
                f"restart count {c.restart_count_max}" if c.restart_count_max else ""]
        flags.append(Flag("oom_killed", "OOM-killed: " + ", ".join(part for part in seen if part)))
    threshold = settings.alert_cpu_throttled_ratio
    if c.cpu_throttled_ratio_max is not None and c.cpu_throttled_ratio_max >= threshold:
        flags.append(Flag("cpu_throttled", f"throttled in up to {c.cpu_throttled_ratio_max:.0%} of CPU periods "
                                           f"(ALERT_CPU_THROTTLED_RATIO {threshold:.0%})"))
    near = settings.alert_memory_near_limit_ratio
    if c.memory_limit_bytes and c.memory_working_set_max_bytes is not None \
            and c.memory_working_set_max_bytes >= near * c.memory_limit_bytes:
        flags.append(Flag("memory_near_limit",
                          f"peak working set {format_bytes(c.memory_working_set_max_bytes)} is "
                          f"{c.memory_working_set_max_bytes / c.memory_limit_bytes:.0%} of its "
                          f"{format_bytes(c.memory_limit_bytes)} limit (ALERT_MEMORY_NEAR_LIMIT_RATIO {near:.0%})"))
    missing = [name for name, value in (("CPU", c.cpu_request_millicores), ("memory", c.memory_request_bytes))
               if value is None]
    if missing:
        flags.append(Flag("no_requests", f"no {' or '.join(missing)} request: the scheduler reserves nothing"))
    missing = [name for name, value in (("CPU", c.cpu_limit_millicores), ("memory", c.memory_limit_bytes))
               if value is None]
    if missing:
        flags.append(Flag("no_limits", f"no {' or '.join(missing)} limit"))
    return flags


def _reasons(row: ContainerReport, c: ContainerWindowUsage, over: str, interval: int, span: int) -> dict[str, str]:
    cpu_n, memory_n = row.cpu_samples, row.memory_samples
    newest = f"{utc_minute(c.last_ts)} UTC" if c.last_ts is not None else "-"
    reasons = {
        "requests_and_limits": f"of the newest sample ({newest})",
        "pods_avg": f"{cpu_n} samples x {interval}s (COLLECT_INTERVAL_SECONDS) / {over}",
        "cpu_usage_avg_millicores": f"average of {cpu_n} samples over {over}, per pod",
        "cpu_usage_p95_millicores": f"p95 of {cpu_n} samples over {over}, per pod"
                                    + ("" if c.cpu_percentile_exact else
                                       f" (from usage histograms, within {MAX_RELATIVE_ERROR:.1%})"),
        "cpu_usage_max_millicores": f"highest of {cpu_n} samples over {over}, per pod",
        "memory_working_set_avg_bytes": f"average of {memory_n} samples over {over}, per pod",
        "memory_working_set_max_bytes": f"highest of {memory_n} samples over {over}, per pod",
        "recommended_cpu_request_millicores": row.recommendation.cpu_reason,
        "recommended_memory_bytes": row.recommendation.memory_reason,
    }
    if row.cpu_idle_millicores is not None and row.pods_avg:
        reasons["cpu_idle_millicores"] = (
            f"request {format_millicores(row.cpu_requested_avg_millicores / row.pods_avg)} - "
            f"use {format_millicores(row.cpu_usage_avg_millicores)} on average, x {row.pods_avg:.2f} pods")
    if row.memory_idle_bytes is not None and memory_n:
        pods = memory_n * interval / span
        reasons["memory_idle_bytes"] = (
            f"request {format_bytes(row.memory_requested_avg_bytes / pods)} - "
            f"use {format_bytes(row.memory_working_set_avg_bytes)} on average, x {pods:.2f} pods")
    return reasons


# --- JSON and CSV ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "namespace", "workload_kind", "workload_name", "container", "cpu_samples", "memory_samples", "pods_avg",
    "cpu_request_millicores", "cpu_limit_millicores", "cpu_usage_avg_millicores", "cpu_usage_p95_millicores",
    "cpu_usage_max_millicores", "cpu_idle_millicores", "cpu_throttled_ratio_max",
    "memory_request_bytes", "memory_limit_bytes", "memory_working_set_avg_bytes", "memory_working_set_max_bytes",
    "memory_idle_bytes", "restart_count_max", "oom_killed", "oom_events",
    "recommended_cpu_request_millicores", "recommended_memory_request_bytes", "recommended_memory_limit_bytes",
    "flags", "cpu_recommendation_reason", "memory_recommendation_reason",
)


def container_json(c: ContainerReport) -> dict:
    """One container's line of the JSON report; also the row the CSV is built from."""
    r = c.recommendation
    return {
        "namespace": c.namespace, "workload_kind": c.workload_kind, "workload_name": c.workload_name,
        "container": c.container, "cpu_samples": c.cpu_samples, "memory_samples": c.memory_samples,
        "pods_avg": _round(c.pods_avg, 2),
        "cpu_request_millicores": c.cpu_request_millicores, "cpu_limit_millicores": c.cpu_limit_millicores,
        "cpu_usage_avg_millicores": _round(c.cpu_usage_avg_millicores, 1),
        "cpu_usage_p95_millicores": _round(c.cpu_usage_p95_millicores, 1),
        "cpu_usage_max_millicores": c.cpu_usage_max_millicores,
        "cpu_idle_millicores": _round(c.cpu_idle_millicores, 1),
        "cpu_throttled_ratio_max": _round(c.cpu_throttled_ratio_max, 3),
        "memory_request_bytes": c.memory_request_bytes, "memory_limit_bytes": c.memory_limit_bytes,
        "memory_working_set_avg_bytes": _round(c.memory_working_set_avg_bytes, 0),
        "memory_working_set_max_bytes": c.memory_working_set_max_bytes,
        "memory_idle_bytes": _round(c.memory_idle_bytes, 0),
        "restart_count_max": c.restart_count_max, "oom_killed": c.oom_killed, "oom_events": c.oom_events,
        "recommended_cpu_request_millicores": r.cpu_request_millicores,
        "recommended_memory_request_bytes": r.memory_request_bytes,
        "recommended_memory_limit_bytes": r.memory_limit_bytes,
        "flags": [{"flag": f.flag, "reason": f.reason} for f in c.flags],
        "reasons": c.reasons,
    }


def totals_json(t: Totals) -> dict:
    """A group's totals for the JSON report, rounded: millicores to a tenth, bytes to whole bytes."""
    return {
        "containers": t.containers,
        "cpu_requested_millicores": round(t.cpu_requested_millicores, 1),
        "cpu_used_millicores": round(t.cpu_used_millicores, 1),
        "cpu_idle_millicores": round(t.cpu_idle_millicores, 1),
        "memory_requested_bytes": round(t.memory_requested_bytes),
        "memory_used_bytes": round(t.memory_used_bytes),
        "memory_idle_bytes": round(t.memory_idle_bytes),
        "flags": dict(sorted(t.flags.items())),
    }


def report_json(report: Report) -> dict:
    """The whole report as the JSON body the report function answers."""
    q, w = report.query, report.query.window
    return {
        "generated_at": iso_utc(report.generated_at),
        "window": {"label": w.label, "start": iso_utc(w.start), "end": iso_utc(w.end), "span_seconds": report.span_seconds,
                   "sources": [{"source": source, "start": iso_utc(start), "end": iso_utc(end)}
                               for source, start, end in report.sources]},
        "filters": {"namespace": q.namespace, "workload": q.workload, "sort": q.sort, "limit": q.limit},
        "policy": {"cpu_percentile": report.policy.cpu_percentile, "memory_headroom": report.policy.memory_headroom,
                   "cpu_floor_millicores": report.policy.cpu_floor_millicores,
                   "memory_floor_bytes": report.policy.memory_floor_bytes, "min_samples": report.policy.min_samples},
        "notes": {
            "totals": "requested, used and idle are averages over the window of every pod together; idle is "
                      "max(0, requested - used) per container, so it can exceed requested - used in a total",
            "per_pod": "usage, requests, limits and recommendations are per pod",
            "recommendations": f"CPU request = {percentile_label(report.policy.cpu_percentile)} of usage "
                               f"(REPORT_CPU_PERCENTILE); memory request and limit = max working set + "
                               f"{report.policy.memory_headroom:.0%} (REPORT_MEMORY_HEADROOM)",
        },
        "cluster": totals_json(report.cluster),
        "namespaces": {name: totals_json(t) for name, t in report.namespaces.items()},
        "workloads": {name: totals_json(t) for name, t in report.workloads.items()},
        "containers_total": report.containers_total,
        "containers": [container_json(c) for c in report.containers],
    }


def report_csv(report: Report) -> str:
    """The listed containers as CSV text, one row per container under a header of CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in report.containers:
        row = container_json(c)
        row["flags"] = ";".join(f.flag for f in c.flags)
        row["cpu_recommendation_reason"] = c.recommendation.cpu_reason
        row["memory_recommendation_reason"] = c.recommendation.memory_reason
        writer.writerow([_csv_value(row[name]) for name in CSV_COLUMNS])
    return out.getvalue()


def _csv_value(value: object) -> object:
    """As in the JSON: empty for null, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _round(value: float | None, digits: int) -> float | int | None:
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)
