"""A report's container: its figures with its workload's policy and HPAs, the recommendation, its money,
whether it is gone, and (for the listed ones) the reason behind every figure.

Every selected container is assessed (`assess`): savings totals and the `savings` order need every
recommendation. The reasons cost the most words, so only the listed containers get them (`explain`),
which is what JSON, CSV, the table and the page render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.core.formats import format_bytes, format_duration, format_millicores, utc_minute
from shared.domain.change_impact import ResourceChange
from shared.domain.costs import ContainerCosts, container_costs
from shared.domain.policies import WorkloadPolicy
from shared.domain.report.context import ReportContext
from shared.domain.report.figures import ContainerFigures
from shared.domain.report.flags import Flag
from shared.domain.rightsizing import Current, Recommendation, UsageEvidence, ignored, recommend
from shared.store.histograms import MAX_RELATIVE_ERROR
from shared.store.workload_facts import HpaWindow


@dataclass(kw_only=True)
class ExplainedContainer(ContainerFigures):
    """A container's figures, recommendation, policy, HPAs and money; `reasons` says where every figure
    comes from (filled for the listed containers)."""

    recommendation: Recommendation
    policy: WorkloadPolicy
    hpas: list[HpaWindow]  # the HPAs scaling its workload, as the window's newest run saw them
    group: str | None  # its workload's value of REPORT_GROUP_BY_LABEL
    last_seen_ts: int | None  # its newest sample
    gone: bool  # the newest run collecting its namespace no longer saw it
    sidecar: bool  # a native sidecar: declared under the pod template's initContainers
    costs: ContainerCosts
    change_impacts: list[ResourceChange] = field(default_factory=list)  # its request and limit changes in the
    # window and what followed each, oldest first (filled for the listed containers, like `reasons`)
    reasons: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: ContainerFigures, **assessment: Any) -> ExplainedContainer:
        """`row` with its assessment (every field ExplainedContainer adds but the two filled for the listed
        containers). Built without the generated __init__: a fleet page assesses 25,000 containers, and
        passing 45 fields one by one was about a tenth of its time."""
        made = cls.__new__(cls)
        vars(made).update(vars(row), change_impacts=[], reasons={}, **assessment)
        return made

    @property
    def hpa_at_max(self) -> bool:
        """Whether an HPA scaling it sat at its maximum replicas in most of the window's runs."""
        return any(flag.flag == "hpa_at_max" for flag in self.flags)


def assess(row: ContainerFigures, ctx: ReportContext) -> ExplainedContainer:
    """The row with its workload's policy and HPAs, its recommendation, money and whether it is gone."""
    key = (row.namespace, row.workload_kind, row.workload_name)
    policy = ctx.policy(key)
    hpas = ctx.hpas.get(key, [])
    c = row.usage
    current = Current(row.cpu_request_millicores, row.cpu_limit_millicores, row.memory_request_bytes,
                      row.memory_limit_bytes)
    newest_run = ctx.newest_run_for(row.namespace)
    gone = c.last_ts is not None and newest_run is not None and c.last_ts < newest_run
    covered = ctx.covered.seconds_for(row.namespace)
    if policy.ignored:
        recommendation = ignored(current, "k8s-monitor.io/ignore: \"true\" on the workload's pods")
    else:
        first = ctx.first_seen_ts.get(row.container_id, c.last_ts)
        recommendation = recommend(UsageEvidence(
            covered, row.cpu_samples, c.cpu_percentile_millicores(policy.policy.cpu_percentile),
            c.cpu_percentile_exact, row.memory_samples, c.memory_working_set_max_bytes,
            span_seconds=(c.last_ts - first) if c.last_ts is not None and first is not None else 0,
            current=current, oom_kills=_oom_kills(row), hpa_scaling=_hpa_scaling(hpas, row.container)),
            policy.policy)
    excluded = ("gone" if gone else "ignored by annotation" if policy.ignored else
                "namespace in REPORT_SAVINGS_EXCLUDE" if row.namespace in ctx.savings_exclude else None)
    costs = container_costs(row.cpu_requested_avg_millicores, row.cpu_idle_millicores,
                            row.memory_requested_avg_bytes, row.memory_idle_bytes, row.pods_avg, recommendation,
                            ctx.prices, excluded)
    return ExplainedContainer.of(row, flags=[*row.flags, *_hpa_flags(hpas)] if hpas else row.flags,
                                 recommendation=recommendation, policy=policy, hpas=hpas, group=ctx.group(key),
                                 last_seen_ts=c.last_ts, gone=gone, sidecar=ctx.is_sidecar(key, row.container),
                                 costs=costs)


def _oom_kills(row: ContainerFigures) -> str:
    """The OOM kills of the window in words ("" for none), for the reason of the OOM bump."""
    seen = []
    if row.oom_events:
        seen.append(f"{row.oom_events} OOM events")
    if row.oom_terminations:
        seen.append("last termination reason OOMKilled")
    if seen and row.restart_count_max:
        seen.append(f"restart count {row.restart_count_max}")
    return ", ".join(seen)


def _hpa_scaling(hpas: list[HpaWindow], container: str) -> dict[str, str]:
    """resource -> the HPA scaling the workload on its utilisation over this container's request."""
    scaling: dict[str, str] = {}
    for hpa in hpas:
        for metric in hpa.metrics:
            for resource in ("cpu", "memory"):
                if resource not in scaling and metric.scales_on_request(resource, container):
                    scaling[resource] = f"HPA {hpa.name} scales the workload on {metric.describe()}"
    return scaling


def _hpa_flags(hpas: list[HpaWindow]) -> list[Flag]:
    """hpa_at_max: the current replicas equalled the maximum in more than half of the window's runs."""
    return [Flag("hpa_at_max", f"HPA {hpa.name} was at its maximum of {hpa.max_replicas} replicas in "
                               f"{hpa.runs_at_max} of {hpa.runs} runs: it cannot scale out further; raise "
                               f"maxReplicas, or the requests if the pods are starved")
            for hpa in hpas if hpa.runs and hpa.runs_at_max * 2 > hpa.runs]


def explain(c: ExplainedContainer, ctx: ReportContext) -> None:
    """Fill `c.reasons`: where every figure, and every part of the recommendation, comes from."""
    usage, over = c.usage, format_duration(ctx.covered.seconds_for(c.namespace))
    cpu_n, memory_n = c.cpu_samples, c.memory_samples
    r = c.recommendation
    reasons = {
        "requests_and_limits": f"of the newest sample ({utc_minute(usage.last_ts)})",
        "pods_avg": f"{format_duration(usage.cpu_usage_pod_seconds)} of pod time ({cpu_n} samples) / {over} "
                    f"covered by collections",
        "cpu_usage_avg_millicores": f"average of {cpu_n} samples over {over}, per pod",
        "cpu_usage_p95_millicores": f"p95 of {cpu_n} samples over {over}, per pod"
                                    + ("" if usage.cpu_percentile_exact else
                                       f" (from usage histograms, within {MAX_RELATIVE_ERROR:.1%})"),
        "cpu_usage_max_millicores": f"highest of {cpu_n} samples over {over}, per pod",
        "memory_working_set_avg_bytes": f"average of {memory_n} samples over {over}, per pod",
        "memory_working_set_max_bytes": f"highest of {memory_n} samples over {over}, per pod",
        "recommended_cpu_request_millicores": r.cpu_request.reason,
        "recommended_cpu_limit_millicores": r.cpu_limit.reason,
        "recommended_memory_request_bytes": r.memory_request.reason,
        "recommended_memory_limit_bytes": r.memory_limit.reason,
        "confidence": r.confidence_reason,
        "savings_per_month": _savings_reason(c, ctx),
    }
    if c.cpu_idle_millicores is not None and c.pods_avg:
        reasons["cpu_idle_millicores"] = (
            f"request {format_millicores(c.cpu_requested_avg_millicores / c.pods_avg)} - "
            f"use {format_millicores(c.cpu_usage_avg_millicores)} on average, x {c.pods_avg:.2f} pods")
    covered = ctx.covered.seconds_for(c.namespace)
    if c.memory_idle_bytes is not None and usage.memory_working_set_pod_seconds and covered:
        pods = usage.memory_working_set_pod_seconds / covered
        reasons["memory_idle_bytes"] = (
            f"request {format_bytes(c.memory_requested_avg_bytes / pods)} - "
            f"use {format_bytes(c.memory_working_set_avg_bytes)} on average, x {pods:.2f} pods")
    if c.gone:
        reasons["gone"] = (f"not seen by the newest collection of namespace {c.namespace}; last seen "
                           f"{utc_minute(c.last_seen_ts)}. Left out of savings; its recommendation stays for "
                           f"anyone who recreates it")
    if c.policy.annotations:
        reasons["policy"] = "from the pods' annotations: " + ", ".join(
            f"{name}={value}" for name, value in sorted(c.policy.annotations.items()))
    if c.policy.errors:
        reasons["policy_errors"] = "; ".join(c.policy.errors)
    if ctx.hpa_error is not None and not c.hpas:
        reasons["hpa"] = (f"HPAs could not be listed by the newest collection ({ctx.hpa_error}): if one scales this "
                          f"workload on CPU or memory utilisation, a new request changes when it scales")
    c.reasons = reasons


def _savings_reason(c: ExplainedContainer, ctx: ReportContext) -> str:
    prices = ctx.prices
    basis = (f"(current - recommended request) x {c.pods_avg or 0:.2f} pods x {prices.cpu_core_hour:g} "
             f"{prices.currency} per core-hour and {prices.memory_gib_hour:g} per GiB-hour x 730 hours; raises are "
             f"the cost to fix risk, never savings")
    if c.costs.excluded:
        return f"{basis}; left out of the savings totals: {c.costs.excluded}"
    return basis
