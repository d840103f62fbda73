"""The report as JSON (the report function's default answer) and as CSV (one row per listed container).

Both round the same way: millicores to a tenth, bytes to whole bytes; CSV writes null as an empty
field and booleans as true/false, as in the JSON.
"""

from __future__ import annotations

import csv
import io

from shared.core.formats import iso_utc
from shared.domain.report.build import Report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.figures import Totals
from shared.domain.rightsizing import percentile_label

FORMATS = ("json", "csv", "html")

CSV_COLUMNS = (
    "namespace", "workload_kind", "workload_name", "container", "cpu_samples", "memory_samples", "pods_avg",
    "cpu_request_millicores", "cpu_limit_millicores", "cpu_usage_avg_millicores", "cpu_usage_p95_millicores",
    "cpu_usage_max_millicores", "cpu_idle_millicores", "cpu_throttled_ratio_max",
    "memory_request_bytes", "memory_limit_bytes", "memory_working_set_avg_bytes", "memory_working_set_max_bytes",
    "memory_idle_bytes", "restart_count_max", "oom_killed", "oom_events",
    "recommended_cpu_request_millicores", "recommended_memory_request_bytes", "recommended_memory_limit_bytes",
    "flags", "cpu_recommendation_reason", "memory_recommendation_reason",
)


def container_json(c: ExplainedContainer) -> dict:
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
        "cluster_name": report.cluster_name,
        "generated_at": iso_utc(report.generated_at),
        "window": {"label": w.label, "start": iso_utc(w.start), "end": iso_utc(w.end),
                   "span_seconds": report.covered_seconds,
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
        "runs": report.runs.as_dict(),
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
