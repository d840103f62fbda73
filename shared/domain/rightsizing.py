"""Rightsizing: what to set a container's CPU request and memory request/limit to, and why.

CPU request = a percentile of its usage (REPORT_CPU_PERCENTILE, 95): enough for all but the busiest
moments, where CPU is only throttled. Memory request = limit = the highest working set seen plus
headroom (REPORT_MEMORY_HEADROOM, 15 %): memory cannot be throttled, a container above its limit is
OOM-killed. Both have floors (REPORT_CPU_FLOOR_MILLICORES, REPORT_MEMORY_FLOOR_BYTES), and with fewer
than REPORT_MIN_SAMPLES samples there is no recommendation, only the reason. Every value carries the
sentence that explains it, because a number nobody can check is a number nobody applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.core.formats import MiB, format_bytes, format_duration, format_millicores
from shared.core.settings import Settings
from shared.store.histograms import MAX_RELATIVE_ERROR


@dataclass(frozen=True)
class RightsizingPolicy:
    """How recommendations are made: the CPU percentile, memory headroom (a fraction), floors and minimum samples."""

    cpu_percentile: float
    memory_headroom: float
    cpu_floor_millicores: int
    memory_floor_bytes: int
    min_samples: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RightsizingPolicy:
        """The policy the REPORT_* settings describe."""
        return cls(settings.report_cpu_percentile, settings.report_memory_headroom,
                   settings.report_cpu_floor_millicores, settings.report_memory_floor_bytes,
                   settings.report_min_samples)


@dataclass(frozen=True)
class UsageEvidence:
    """What one workload container used over the window, as far as a recommendation needs it."""

    covered_seconds: float  # the time the samples cover (their runs' windows)
    cpu_samples: int
    cpu_percentile_millicores: float | None  # at the policy's percentile
    cpu_percentile_exact: bool  # False: read from log-bucket histograms (within MAX_RELATIVE_ERROR)
    memory_samples: int
    memory_working_set_max_bytes: int | None


@dataclass(frozen=True)
class Recommendation:
    """None where there is not enough data; the reasons say why either way."""

    cpu_request_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None
    cpu_reason: str
    memory_reason: str


def recommend(evidence: UsageEvidence, policy: RightsizingPolicy) -> Recommendation:
    """Request and limit recommendations for one container, each with the reason a user can check.

    Memory request and limit are the same value: a container using more than it asked for risks eviction."""
    cpu, cpu_reason = _cpu_request(evidence, policy)
    memory, memory_reason = _memory(evidence, policy)
    return Recommendation(cpu, memory, memory, cpu_reason, memory_reason)


def _cpu_request(e: UsageEvidence, policy: RightsizingPolicy) -> tuple[int | None, str]:
    over = format_duration(e.covered_seconds)
    if e.cpu_samples < policy.min_samples or e.cpu_percentile_millicores is None:
        return None, _not_enough("CPU", e.cpu_samples, over, policy.min_samples)
    basis = f"{percentile_label(policy.cpu_percentile)} of {e.cpu_samples} samples over {over}"
    note = "" if e.cpu_percentile_exact else f" (from usage histograms, within {MAX_RELATIVE_ERROR:.1%})"
    value = math.ceil(e.cpu_percentile_millicores)
    if value < policy.cpu_floor_millicores:
        return policy.cpu_floor_millicores, (
            f"floor of {format_millicores(policy.cpu_floor_millicores)}: {basis} is "
            f"{format_millicores(e.cpu_percentile_millicores)}{note}")
    return value, basis + note


def _memory(e: UsageEvidence, policy: RightsizingPolicy) -> tuple[int | None, str]:
    over = format_duration(e.covered_seconds)
    if e.memory_samples < policy.min_samples or e.memory_working_set_max_bytes is None:
        return None, _not_enough("memory", e.memory_samples, over, policy.min_samples)
    peak = e.memory_working_set_max_bytes
    basis = (f"max working set {format_bytes(peak)} over {over} ({e.memory_samples} samples)"
             f" + {policy.memory_headroom:.0%} headroom")
    value = math.ceil(peak * (1 + policy.memory_headroom) / MiB) * MiB
    if value < policy.memory_floor_bytes:
        return policy.memory_floor_bytes, f"floor of {format_bytes(policy.memory_floor_bytes)}: {basis}"
    return value, basis


def _not_enough(resource: str, samples: int, over: str, needed: int) -> str:
    return (f"not enough data: {samples} {resource} usage samples over {over}, at least {needed} needed "
            f"(REPORT_MIN_SAMPLES); keep collecting or widen the window")


def percentile_label(percent: float) -> str:
    """How a percentile is written in reasons and column names: 95 gives `p95`, 99.5 gives `p99.5`."""
    return f"p{percent:g}"
