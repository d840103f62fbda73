"""A listed container: its figures with the rightsizing recommendation and the reason behind each one.

The recommendation and the reasons cost the most to compute, so only the containers a report lists
get them: an ExplainedContainer always has both, which is what JSON, CSV, the table and the page
render.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from shared.core.formats import format_bytes, format_duration, format_millicores, utc_minute
from shared.domain.report.figures import ContainerFigures
from shared.domain.rightsizing import (
    Recommendation,
    RightsizingPolicy,
    UsageEvidence,
    recommend,
)
from shared.store.histograms import MAX_RELATIVE_ERROR


@dataclass(kw_only=True)
class ExplainedContainer(ContainerFigures):
    """A listed container's figures, its recommendation, and where every figure comes from."""

    recommendation: Recommendation
    reasons: dict[str, str]


def explain(row: ContainerFigures, covered_seconds: int, policy: RightsizingPolicy) -> ExplainedContainer:
    """The row with its recommendation and the reason behind every figure; `covered_seconds` is the
    time the row's averages over time are over."""
    c = row.usage
    recommendation = recommend(
        UsageEvidence(covered_seconds, row.cpu_samples, c.cpu_percentile_millicores(policy.cpu_percentile),
                      c.cpu_percentile_exact, row.memory_samples, c.memory_working_set_max_bytes),
        policy)
    figures: dict[str, Any] = {f.name: getattr(row, f.name) for f in fields(row)}
    return ExplainedContainer(**figures, recommendation=recommendation,
                              reasons=_reasons(row, recommendation, covered_seconds))


def _reasons(row: ContainerFigures, recommendation: Recommendation, covered: int) -> dict[str, str]:
    c, over = row.usage, format_duration(covered)
    cpu_n, memory_n = row.cpu_samples, row.memory_samples
    newest = utc_minute(c.last_ts)
    reasons = {
        "requests_and_limits": f"of the newest sample ({newest})",
        "pods_avg": f"{format_duration(c.cpu_usage_pod_seconds)} of pod time ({cpu_n} samples) / {over} covered by "
                    f"collections",
        "cpu_usage_avg_millicores": f"average of {cpu_n} samples over {over}, per pod",
        "cpu_usage_p95_millicores": f"p95 of {cpu_n} samples over {over}, per pod"
                                    + ("" if c.cpu_percentile_exact else
                                       f" (from usage histograms, within {MAX_RELATIVE_ERROR:.1%})"),
        "cpu_usage_max_millicores": f"highest of {cpu_n} samples over {over}, per pod",
        "memory_working_set_avg_bytes": f"average of {memory_n} samples over {over}, per pod",
        "memory_working_set_max_bytes": f"highest of {memory_n} samples over {over}, per pod",
        "recommended_cpu_request_millicores": recommendation.cpu_reason,
        "recommended_memory_bytes": recommendation.memory_reason,
    }
    if row.cpu_idle_millicores is not None and row.pods_avg:
        reasons["cpu_idle_millicores"] = (
            f"request {format_millicores(row.cpu_requested_avg_millicores / row.pods_avg)} - "
            f"use {format_millicores(row.cpu_usage_avg_millicores)} on average, x {row.pods_avg:.2f} pods")
    if row.memory_idle_bytes is not None and c.memory_working_set_pod_seconds and covered:
        pods = c.memory_working_set_pod_seconds / covered
        reasons["memory_idle_bytes"] = (
            f"request {format_bytes(row.memory_requested_avg_bytes / pods)} - "
            f"use {format_bytes(row.memory_working_set_avg_bytes)} on average, x {pods:.2f} pods")
    return reasons
