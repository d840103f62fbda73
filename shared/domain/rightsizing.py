"""Rightsizing: what to set a container's CPU and memory requests and limits to, what to do about it, and why.

CPU request = a percentile of its usage (REPORT_CPU_PERCENTILE, 95; KRR's `simple` strategy):
enough for all but the busiest moments, where CPU is only throttled. Memory = the highest working
set seen plus headroom (REPORT_MEMORY_HEADROOM, 15 %): memory cannot be throttled, a container
above its limit is OOM-killed. A container OOM-killed in the window gets at least its limit x 1.2
and at least +100 MiB (the VPA recommender's OOM bump), never less than that limit. Both have
floors and ceilings (REPORT_CPU_FLOOR_MILLICORES, REPORT_MEMORY_FLOOR_BYTES, REPORT_CPU_MAX_MILLICORES,
REPORT_MEMORY_MAX_BYTES, or a workload's annotations: shared/domain/policies.py). With fewer than
REPORT_MIN_SAMPLES samples there is no value, only the reason.

Each resource then gets an action: `keep` when the value is within REPORT_MIN_CHANGE_RATIO of the
current one (a 5 % change is noise, not worth a rollout), or when an HPA scales the workload on that
resource's utilisation (a new request moves its scaling) unless REPORT_ALLOW_HPA; else `raise`,
`lower`, `set` (nothing set now), `remove` (a CPU limit under REPORT_CPU_LIMIT_POLICY=none) or
`unknown` (not enough data). Limits follow REPORT_CPU_LIMIT_POLICY (none, keep, ratio:N) and
REPORT_MEMORY_LIMIT_POLICY (equal-request, keep), and a limit is never left below its request.

Confidence (0..1) says how much history a recommendation rests on: min(span / 7 days, samples / a
week of one pod's samples), like the VPA's (days of history and sample count). Every value carries
the sentence that explains it, because a number nobody can check is a number nobody applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.core.formats import MiB, format_bytes, format_duration, format_millicores
from shared.core.settings import Settings
from shared.core.timeutil import DAY_SECONDS
from shared.store.histograms import MAX_RELATIVE_ERROR

OOM_BUMP_RATIO = 1.2  # the VPA recommender's oomBumpUpRatio
OOM_MIN_BUMP_BYTES = 100 * MiB  # the VPA recommender's oomMinBumpUp
CONFIDENCE_DAYS = 7  # a week of history gives full confidence

KEEP, RAISE, LOWER, SET, REMOVE, UNKNOWN = "keep", "raise", "lower", "set", "remove", "unknown"
CHANGES = frozenset({RAISE, LOWER, SET, REMOVE})  # the actions a patch applies


@dataclass(frozen=True)
class RightsizingPolicy:
    """How recommendations are made: the REPORT_* settings, or a workload's annotations over them."""

    cpu_percentile: float
    memory_headroom: float  # a fraction: 0.15 is 15 %
    cpu_floor_millicores: int
    memory_floor_bytes: int
    min_samples: int
    cpu_max_millicores: int | None = None
    memory_max_bytes: int | None = None
    cpu_limit_policy: str = "keep"  # none, keep or ratio:N
    memory_limit_policy: str = "equal-request"  # or keep
    min_change_ratio: float = 0.1
    allow_hpa: bool = False
    min_confidence: float = 0.5
    full_confidence_samples: int = 2016  # a week of one pod's samples at the collection interval

    @classmethod
    def from_settings(cls, settings: Settings) -> RightsizingPolicy:
        """The policy the REPORT_* settings describe."""
        return cls(settings.report_cpu_percentile, settings.report_memory_headroom,
                   settings.report_cpu_floor_millicores, settings.report_memory_floor_bytes,
                   settings.report_min_samples, settings.report_cpu_max_millicores, settings.report_memory_max_bytes,
                   settings.report_cpu_limit_policy, settings.report_memory_limit_policy,
                   settings.report_min_change_ratio, settings.report_allow_hpa, settings.report_min_confidence,
                   round(CONFIDENCE_DAYS * DAY_SECONDS / settings.collect_interval_seconds))

    @property
    def cpu_limit_ratio(self) -> float | None:
        """N of `ratio:N`; None for the other CPU limit policies."""
        return float(self.cpu_limit_policy.removeprefix("ratio:")) if self.cpu_limit_policy.startswith("ratio:") \
            else None


@dataclass(frozen=True)
class Current:
    """What a container declares now (its newest sample); None where it sets nothing."""

    cpu_request_millicores: int | None = None
    cpu_limit_millicores: int | None = None
    memory_request_bytes: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class UsageEvidence:
    """What one workload container used over the window, as far as a recommendation needs it."""

    covered_seconds: float  # the time the samples cover (their runs' windows)
    cpu_samples: int
    cpu_percentile_millicores: float | None  # at the policy's percentile
    cpu_percentile_exact: bool  # False: read from log-bucket histograms (within MAX_RELATIVE_ERROR)
    memory_samples: int
    memory_working_set_max_bytes: int | None
    span_seconds: float = 0.0  # from its first to its newest sample in the window: the history behind it
    current: Current = field(default_factory=Current)
    oom_kills: str = ""  # the OOM kills seen in the window, in words; "": none
    hpa_scaling: dict[str, str] = field(default_factory=dict)  # "cpu"/"memory" -> the HPA that scales on it


@dataclass(frozen=True)
class Advice:
    """One request or limit: what it is, what usage calls for, what to set, the action and why.

    `computed` is the sizing from usage (None without enough data, or a limit the policy drops);
    `recommended` is the value to set after the rules: the current one when the action is keep,
    None when it is remove or unknown."""

    current: int | None
    computed: int | None
    recommended: int | None
    action: str
    reason: str

    @property
    def changes(self) -> bool:
        """Whether applying the recommendation changes this value (a patch writes it)."""
        return self.action in CHANGES


@dataclass(frozen=True)
class Recommendation:
    """Requests and limits for one container, its confidence, and the reasons either way."""

    cpu_request: Advice
    cpu_limit: Advice
    memory_request: Advice
    memory_limit: Advice
    confidence: float  # 0..1
    low_confidence: bool  # below REPORT_MIN_CONFIDENCE
    confidence_reason: str

    @property
    def changes(self) -> bool:
        """Whether any request or limit should change: else the recommendation is keep."""
        return any(a.changes for a in self.advice.values())

    @property
    def advice(self) -> dict[str, Advice]:
        """The four values by name: cpu_request, cpu_limit, memory_request, memory_limit."""
        return {"cpu_request": self.cpu_request, "cpu_limit": self.cpu_limit,
                "memory_request": self.memory_request, "memory_limit": self.memory_limit}

    # the names the page reads
    @property
    def cpu_request_millicores(self) -> int | None:
        """The recommended CPU request; None without enough data."""
        return self.cpu_request.recommended

    @property
    def memory_request_bytes(self) -> int | None:
        """The recommended memory request; None without enough data."""
        return self.memory_request.recommended

    @property
    def memory_limit_bytes(self) -> int | None:
        """The recommended memory limit; None without enough data."""
        return self.memory_limit.recommended

    @property
    def cpu_reason(self) -> str:
        """Why the CPU request is what it is."""
        return self.cpu_request.reason

    @property
    def memory_reason(self) -> str:
        """Why the memory request is what it is."""
        return self.memory_request.reason


def recommend(evidence: UsageEvidence, policy: RightsizingPolicy) -> Recommendation:
    """Requests and limits for one container, with the action for each and the reason a user can check."""
    now = evidence.current
    cpu_computed, cpu_basis = _cpu_request(evidence, policy)
    cpu_request = _decide(cpu_computed, cpu_basis, now.cpu_request_millicores, "cpu", evidence, policy,
                          format_millicores)
    memory_computed, memory_basis = _memory(evidence, policy)
    memory_request = _decide(memory_computed, memory_basis, now.memory_request_bytes, "memory", evidence, policy,
                             format_bytes, noise_filter=not evidence.oom_kills)
    confidence, confidence_reason = _confidence(evidence, policy)
    return Recommendation(
        cpu_request, _cpu_limit(cpu_request, now.cpu_limit_millicores, policy),
        memory_request, _memory_limit(memory_request, memory_computed, now.memory_limit_bytes, evidence, policy),
        confidence, confidence < policy.min_confidence, confidence_reason)


def ignored(current: Current, reason: str) -> Recommendation:
    """Everything kept as it is, because the workload asked to be left alone (`reason` says how)."""
    def keep(value: int | None) -> Advice:
        return Advice(value, None, value, KEEP, f"ignored: {reason}")

    return Recommendation(keep(current.cpu_request_millicores), keep(current.cpu_limit_millicores),
                          keep(current.memory_request_bytes), keep(current.memory_limit_bytes), 0.0, False,
                          f"no recommendation: ignored ({reason})")


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
    if policy.cpu_max_millicores is not None and value > policy.cpu_max_millicores:
        return policy.cpu_max_millicores, (
            f"ceiling of {format_millicores(policy.cpu_max_millicores)}: {basis} is "
            f"{format_millicores(e.cpu_percentile_millicores)}{note}")
    return value, basis + note


def _memory(e: UsageEvidence, policy: RightsizingPolicy) -> tuple[int | None, str]:
    """Peak plus headroom, the OOM bump when the container was OOM-killed, then the floor and ceiling."""
    over = format_duration(e.covered_seconds)
    peak = e.memory_working_set_max_bytes
    enough = e.memory_samples >= policy.min_samples and peak is not None
    if e.oom_kills:
        bumped = _oom_bump(e, policy, peak if enough else None)
        if bumped is not None:
            return bumped
    if not enough or peak is None:
        return None, _not_enough("memory", e.memory_samples, over, policy.min_samples)
    basis = (f"max working set {format_bytes(peak)} over {over} ({e.memory_samples} samples)"
             f" + {policy.memory_headroom:.0%} headroom")
    value = _whole_mebibytes(peak * (1 + policy.memory_headroom))
    if value < policy.memory_floor_bytes:
        return policy.memory_floor_bytes, f"floor of {format_bytes(policy.memory_floor_bytes)}: {basis}"
    if policy.memory_max_bytes is not None and value > policy.memory_max_bytes:
        return policy.memory_max_bytes, f"ceiling of {format_bytes(policy.memory_max_bytes)}: {basis}"
    return value, basis


def _oom_bump(e: UsageEvidence, policy: RightsizingPolicy, peak: int | None) -> tuple[int, str] | None:
    """The VPA's rule for an OOM-killed container: at least its limit x 1.2 and at least +100 MiB, or peak
    plus headroom if higher; never below the floor, and never capped below the bump by a ceiling.

    Without a limit (killed under node memory pressure) the bump starts from the larger of request
    and peak. None when there is nothing to start from."""
    base, what = e.current.memory_limit_bytes, "limit"
    if base is None:
        candidates = [v for v in (e.current.memory_request_bytes, peak) if v is not None]
        if not candidates:
            return None
        base = max(candidates)
        what = "request" if base == e.current.memory_request_bytes else "peak working set"
    bump = _whole_mebibytes(max(base * OOM_BUMP_RATIO, base + OOM_MIN_BUMP_BYTES))
    reason = (f"OOM-killed in the window ({e.oom_kills}): at least its {what} {format_bytes(base)} x "
              f"{OOM_BUMP_RATIO:g} and at least +{format_bytes(OOM_MIN_BUMP_BYTES)} (the VPA's OOM bump)")
    value = bump
    if peak is not None:
        headroom = _whole_mebibytes(peak * (1 + policy.memory_headroom))
        if headroom > bump:
            value = headroom
            reason = (f"OOM-killed in the window ({e.oom_kills}): max working set {format_bytes(peak)} + "
                      f"{policy.memory_headroom:.0%} headroom, above its {what} {format_bytes(base)} x "
                      f"{OOM_BUMP_RATIO:g} (the VPA's OOM bump)")
    if value < policy.memory_floor_bytes:
        return policy.memory_floor_bytes, f"floor of {format_bytes(policy.memory_floor_bytes)}: {reason}"
    if policy.memory_max_bytes is not None and policy.memory_max_bytes < value:
        reason += (f"; the ceiling of {format_bytes(policy.memory_max_bytes)} is not applied: never less than an "
                   f"OOM-killed container needs")
    return value, reason


def _decide(computed: int | None, basis: str, current: int | None, resource: str, e: UsageEvidence,
            policy: RightsizingPolicy, fmt: Callable[[float], str], noise_filter: bool = True) -> Advice:
    """The action for a request: unknown, keep (HPA or within the noise ratio), or the change."""
    if computed is None:
        return Advice(current, None, None, UNKNOWN, basis)
    hpa = e.hpa_scaling.get(resource)
    if hpa and current is not None:
        if not policy.allow_hpa:
            return Advice(current, computed, current, KEEP, (
                f"keep {fmt(current)}: {hpa}, so a new request changes when it scales; usage calls for "
                f"{fmt(computed)} ({basis}). Set REPORT_ALLOW_HPA=true (or the annotation "
                f"k8s-monitor.io/allow-hpa: \"true\") to recommend it anyway"))
        basis += f"; {hpa}: its scaling changes with the request (REPORT_ALLOW_HPA)"
    if current is None:
        return Advice(current, computed, computed, SET, basis)
    if noise_filter and abs(computed - current) <= policy.min_change_ratio * current:
        return Advice(current, computed, current, KEEP, (
            f"keep {fmt(current)}: {fmt(computed)} ({basis}) is within {policy.min_change_ratio:.0%} of it "
            f"(REPORT_MIN_CHANGE_RATIO)"))
    return Advice(current, computed, computed, RAISE if computed > current else LOWER, basis)


def _cpu_limit(request: Advice, current: int | None, policy: RightsizingPolicy) -> Advice:
    """REPORT_CPU_LIMIT_POLICY: none removes it (KRR: limits throttle a container while the node has
    CPU to spare), keep keeps it (raised to the request if that grows past it), ratio:N sets N x request."""
    ratio = policy.cpu_limit_ratio
    new_request = request.recommended
    if ratio is not None:
        if new_request is None:
            return Advice(current, None, None, UNKNOWN, "no CPU request to derive the limit from")
        value = math.ceil(new_request * ratio)
        basis = f"{ratio:g} x the request {format_millicores(new_request)} (REPORT_CPU_LIMIT_POLICY ratio:{ratio:g})"
        return _limit_action(current, value, basis, new_request, policy)
    if policy.cpu_limit_policy == "none":
        if current is None:
            return Advice(None, None, None, KEEP, "no CPU limit (REPORT_CPU_LIMIT_POLICY none)")
        return Advice(current, None, None, REMOVE, "remove the CPU limit: it throttles the container while the node "
                                                   "has CPU to spare (REPORT_CPU_LIMIT_POLICY none, as KRR)")
    return _kept_limit(current, new_request, "CPU", "REPORT_CPU_LIMIT_POLICY", format_millicores)


def _memory_limit(request: Advice, computed: int | None, current: int | None, e: UsageEvidence,
                  policy: RightsizingPolicy) -> Advice:
    """REPORT_MEMORY_LIMIT_POLICY: equal-request sets the limit to the memory the usage calls for (at
    least the request: a container using more than it asked for is evicted first), keep keeps it
    (raised to the request if that grows past it)."""
    new_request = request.recommended
    if policy.memory_limit_policy == "keep":
        return _kept_limit(current, new_request, "memory", "REPORT_MEMORY_LIMIT_POLICY", format_bytes)
    if computed is None or new_request is None:
        return Advice(current, None, None, UNKNOWN, request.reason)
    value = max(computed, new_request)
    basis = "equal to the request (REPORT_MEMORY_LIMIT_POLICY equal-request)" if value == new_request else (
        f"{format_bytes(value)} as usage calls for, above the kept request (REPORT_MEMORY_LIMIT_POLICY equal-request)")
    if e.oom_kills and current is not None and value > current:
        return Advice(current, value, value, RAISE, f"{basis}: OOM-killed at this limit ({e.oom_kills})")
    return _limit_action(current, value, basis, new_request, policy)


def _kept_limit(current: int | None, new_request: int | None, resource: str, setting: str,
                fmt: Callable[[float], str]) -> Advice:
    if current is not None and new_request is not None and new_request > current:
        return Advice(current, new_request, new_request, RAISE,
                      f"raised to the new request {fmt(new_request)}: a limit below its request is invalid "
                      f"({setting} keep)")
    what = f"keep the {resource} limit" if current is not None else f"no {resource} limit"
    return Advice(current, current, current, KEEP, f"{what} ({setting} keep)")


def _limit_action(current: int | None, value: int, basis: str, request: int, policy: RightsizingPolicy) -> Advice:
    """Set, keep (within the noise ratio, and not below the new `request`) or change a limit to `value`."""
    if current is None:
        return Advice(None, value, value, SET, basis)
    if current >= request and abs(value - current) <= policy.min_change_ratio * current:
        return Advice(current, value, current, KEEP, f"keep: {basis} is within {policy.min_change_ratio:.0%} of "
                                                     f"the current limit (REPORT_MIN_CHANGE_RATIO)")
    return Advice(current, value, value, RAISE if value > current else LOWER, basis)


def _confidence(e: UsageEvidence, policy: RightsizingPolicy) -> tuple[float, str]:
    """min(1, span / 7 days, samples / a week of one pod's samples): both a long history and many samples."""
    samples = min(e.cpu_samples, e.memory_samples)
    by_span = e.span_seconds / (CONFIDENCE_DAYS * DAY_SECONDS)
    by_samples = samples / policy.full_confidence_samples
    confidence = round(max(0.0, min(1.0, by_span, by_samples)), 2)
    reason = (f"min(1, {format_duration(e.span_seconds)} of history / {CONFIDENCE_DAYS}d, {samples} samples / "
              f"{policy.full_confidence_samples}) = {confidence:.2f}")
    if confidence < policy.min_confidence:
        reason += f", below REPORT_MIN_CONFIDENCE {policy.min_confidence:g}: low confidence"
    return confidence, reason


def _whole_mebibytes(value: float) -> int:
    return math.ceil(value / MiB) * MiB


def _not_enough(resource: str, samples: int, over: str, needed: int) -> str:
    return (f"not enough data: {samples} {resource} usage samples over {over}, at least {needed} needed "
            f"(REPORT_MIN_SAMPLES); keep collecting or widen the window")


def percentile_label(percent: float) -> str:
    """How a percentile is written in reasons and column names: 95 gives `p95`, 99.5 gives `p99.5`."""
    return f"p{percent:g}"
