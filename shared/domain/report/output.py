"""The report as JSON (the report function's default answer) and as CSV (one row per listed container);
`patch` is shared/domain/patches.py's, `html` the page's.

Both round the same way: millicores to a tenth, bytes to whole bytes, money to cents; CSV writes null
as an empty field and booleans as true/false, as in the JSON.
"""

from __future__ import annotations

import csv
import io

from shared.core.formats import iso_utc
from shared.domain.change_impact import Declared, ImpactFigures, ResourceChange
from shared.domain.costs import HOURS_PER_MONTH, ContainerCosts
from shared.domain.patches import patches_text
from shared.domain.report.build import Report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.figures import Totals
from shared.domain.rightsizing import percentile_label
from shared.store.workload_facts import HpaWindow

FORMATS = ("json", "csv", "html", "patch")

CSV_COLUMNS = (
    "namespace", "workload_kind", "workload_name", "container", "group", "gone", "last_seen",
    "cpu_samples", "memory_samples", "pods_avg",
    "cpu_request_millicores", "cpu_limit_millicores", "cpu_usage_avg_millicores", "cpu_usage_p95_millicores",
    "cpu_usage_max_millicores", "cpu_idle_millicores", "cpu_throttled_ratio_max",
    "memory_request_bytes", "memory_limit_bytes", "memory_working_set_avg_bytes", "memory_working_set_max_bytes",
    "memory_idle_bytes", "restart_count_max", "oom_killed", "oom_events",
    "recommendation", "recommended_cpu_request_millicores", "recommended_cpu_limit_millicores",
    "recommended_memory_request_bytes", "recommended_memory_limit_bytes",
    "cpu_request_action", "cpu_limit_action", "memory_request_action", "memory_limit_action",
    "confidence", "low_confidence", "hpas", "hpa_at_max", "ignored", "policy_errors",
    "requested_cost_per_month", "idle_cost_per_month", "savings_per_month", "cost_to_fix_risk_per_month",
    "savings_excluded", "changes", "newest_change", "newest_change_worse", "flags", "cpu_recommendation_reason",
    "memory_recommendation_reason",
)
_RECOMMENDED = {"cpu_request": "recommended_cpu_request_millicores", "cpu_limit": "recommended_cpu_limit_millicores",
                "memory_request": "recommended_memory_request_bytes",
                "memory_limit": "recommended_memory_limit_bytes"}


def container_json(c: ExplainedContainer) -> dict:
    """One container's line of the JSON report; also the row the CSV is built from."""
    r = c.recommendation
    return {
        "namespace": c.namespace, "workload_kind": c.workload_kind, "workload_name": c.workload_name,
        "container": c.container, "group": c.group, "gone": c.gone,
        "last_seen": iso_utc(c.last_seen_ts) if c.last_seen_ts is not None else None,
        "cpu_samples": c.cpu_samples, "memory_samples": c.memory_samples,
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
        "recommendation": "change" if r.changes else "keep",
        **{_RECOMMENDED[name]: advice.recommended for name, advice in r.advice.items()},
        "actions": {name: advice.action for name, advice in r.advice.items()},
        "confidence": r.confidence, "low_confidence": r.low_confidence,
        "hpas": [hpa_json(hpa) for hpa in c.hpas], "hpa_at_max": c.hpa_at_max,
        "policy": {"ignored": c.policy.ignored, "annotations": c.policy.annotations,
                   "errors": list(c.policy.errors)},
        "costs": costs_json(c.costs),
        "changes": [change_json(change) for change in c.change_impacts],
        "flags": [{"flag": f.flag, "reason": f.reason} for f in c.flags],
        "reasons": c.reasons,
    }


def hpa_json(hpa: HpaWindow) -> dict:
    """An HPA scaling a listed workload: bounds, replicas, metrics, and how often it sat at its maximum."""
    return {"name": hpa.name, "min_replicas": hpa.min_replicas, "max_replicas": hpa.max_replicas,
            "current_replicas": hpa.current_replicas, "desired_replicas": hpa.desired_replicas,
            "metrics": [{"type": m.type, "resource": m.resource, "container": m.container,
                         "target_type": m.target_type, "target_utilization_percent": m.target_utilization_percent,
                         "target_value": m.target_value, "description": m.describe()} for m in hpa.metrics],
            "runs": hpa.runs, "runs_at_max": hpa.runs_at_max}


def change_json(change: ResourceChange) -> dict:
    """A change of a container's requests or limits: when, old -> new, and the equal windows before and after."""
    def declared(values: Declared) -> dict:
        return {"cpu_request_millicores": values.cpu_request_millicores,
                "cpu_limit_millicores": values.cpu_limit_millicores,
                "memory_request_bytes": values.memory_request_bytes, "memory_limit_bytes": values.memory_limit_bytes}

    def figures(f: ImpactFigures) -> dict:
        return {"start": iso_utc(f.start), "end": iso_utc(f.end), "samples": f.samples,
                "cpu_p95_millicores": f.cpu_p95_millicores, "memory_peak_bytes": f.memory_peak_bytes,
                "cpu_throttled_ratio_avg": _round(f.cpu_throttled_ratio_avg, 3),
                "cpu_throttled_ratio_max": _round(f.cpu_throttled_ratio_max, 3),
                "oom_kills": f.oom_kills, "restarts": f.restarts}

    return {"at": iso_utc(change.ts), "changed": change.changed, "old": declared(change.old),
            "new": declared(change.new), "window_seconds": change.after.end - change.after.start,
            "before": figures(change.before), "after": figures(change.after), "worse": list(change.worse)}


def costs_json(costs: ContainerCosts) -> dict:
    """A container's money per month, to the cent."""
    return {"requested_per_month": round(costs.requested_per_month, 2),
            "idle_per_month": round(costs.idle_per_month, 2),
            "savings_per_month": round(costs.savings_per_month, 2),
            "cost_to_fix_risk_per_month": round(costs.cost_to_fix_risk_per_month, 2),
            "savings_counted": costs.counted, "savings_excluded": costs.excluded}


def totals_json(t: Totals) -> dict:
    """A group's totals for the JSON report, rounded: millicores to a tenth, bytes to whole bytes, money to cents."""
    return {
        "containers": t.containers,
        "gone_containers": t.gone,
        "cpu_requested_millicores": round(t.cpu_requested_millicores, 1),
        "cpu_used_millicores": round(t.cpu_used_millicores, 1),
        "cpu_idle_millicores": round(t.cpu_idle_millicores, 1),
        "memory_requested_bytes": round(t.memory_requested_bytes),
        "memory_used_bytes": round(t.memory_used_bytes),
        "memory_idle_bytes": round(t.memory_idle_bytes),
        "costs": {"requested_per_month": round(t.costs.requested_per_month, 2),
                  "idle_per_month": round(t.costs.idle_per_month, 2),
                  "savings_per_month": round(t.costs.savings_per_month, 2),
                  "cost_to_fix_risk_per_month": round(t.costs.cost_to_fix_risk_per_month, 2)},
        "flags": dict(sorted(t.flags.items())),
    }


def report_json(report: Report) -> dict:
    """The whole report as the JSON body the report function answers."""
    q, w, p = report.query, report.query.window, report.policy
    return {
        "cluster_name": report.cluster_name,
        "generated_at": iso_utc(report.generated_at),
        "window": {"label": w.label, "start": iso_utc(w.start), "end": iso_utc(w.end),
                   "span_seconds": report.covered_seconds,
                   "sources": [{"source": source, "start": iso_utc(start), "end": iso_utc(end)}
                               for source, start, end in report.sources]},
        "filters": {"namespace": q.namespace, "workload": q.workload, "sort": q.sort, "limit": q.limit},
        "policy": {"cpu_percentile": p.cpu_percentile, "memory_headroom": p.memory_headroom,
                   "cpu_floor_millicores": p.cpu_floor_millicores, "memory_floor_bytes": p.memory_floor_bytes,
                   "cpu_max_millicores": p.cpu_max_millicores, "memory_max_bytes": p.memory_max_bytes,
                   "min_samples": p.min_samples, "cpu_limit_policy": p.cpu_limit_policy,
                   "memory_limit_policy": p.memory_limit_policy, "min_change_ratio": p.min_change_ratio,
                   "min_confidence": p.min_confidence, "allow_hpa": p.allow_hpa},
        "prices": {"currency": report.prices.currency, "cpu_core_hour": report.prices.cpu_core_hour,
                   "memory_gib_hour": report.prices.memory_gib_hour, "hours_per_month": HOURS_PER_MONTH},
        "notes": {
            "totals": "requested, used and idle are averages over the window of every pod together; idle is "
                      "max(0, requested - used) per container, so it can exceed requested - used in a total",
            "per_pod": "usage, requests, limits and recommendations are per pod",
            "recommendations": f"CPU request = {percentile_label(p.cpu_percentile)} of usage "
                               f"(REPORT_CPU_PERCENTILE); memory = max working set + {p.memory_headroom:.0%} "
                               f"(REPORT_MEMORY_HEADROOM), at least the OOM-killed limit x 1.2 (+100Mi); keep within "
                               f"{p.min_change_ratio:.0%} of the current value (REPORT_MIN_CHANGE_RATIO); a "
                               f"workload's k8s-monitor.io/ annotations override these",
            "costs": "per month of 730 hours: requested and idle (requested - used) of every pod together; savings "
                     "if the lowered requests were applied, never counting a raise (that is cost to fix risk); "
                     "gone, ignored and REPORT_SAVINGS_EXCLUDE containers are left out of savings totals",
        },
        "hpa_error": report.hpa_error,
        "runs": report.runs.as_dict(),
        "cluster": totals_json(report.cluster),
        "namespaces": {name: totals_json(t) for name, t in report.namespaces.items()},
        "workloads": {name: totals_json(t) for name, t in report.workloads.items()},
        "group_by_label": report.group_label,
        "groups": {name: totals_json(t) for name, t in report.groups.items()},
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
        row.update({f"{name}_action": action for name, action in row["actions"].items()})
        costs = row["costs"]
        row.update(requested_cost_per_month=costs["requested_per_month"], idle_cost_per_month=costs["idle_per_month"],
                   savings_per_month=costs["savings_per_month"],
                   cost_to_fix_risk_per_month=costs["cost_to_fix_risk_per_month"],
                   savings_excluded=costs["savings_excluded"])
        row["hpas"] = ";".join(f"{h.name}: {', '.join(m.describe() for m in h.metrics)}" for h in c.hpas)
        row["ignored"] = c.policy.ignored
        row["policy_errors"] = "; ".join(c.policy.errors)
        newest = c.change_impacts[-1] if c.change_impacts else None
        row["changes"] = len(c.change_impacts)
        row["newest_change"] = f"{iso_utc(newest.ts)} {newest.label}" if newest else None
        row["newest_change_worse"] = "; ".join(newest.worse) if newest else None
        row["flags"] = ";".join(f.flag for f in c.flags)
        row["cpu_recommendation_reason"] = c.recommendation.cpu_request.reason
        row["memory_recommendation_reason"] = c.recommendation.memory_request.reason
        writer.writerow([_csv_value(row[name]) for name in CSV_COLUMNS])
    return out.getvalue()


def report_patches(report: Report) -> str:
    """The listed containers' patches as one YAML stream (shared/domain/patches.py)."""
    return patches_text(report.patches, report.patches_skipped, report.prices.currency)


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
