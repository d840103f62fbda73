"""A workload's rightsizing policy from its pods' `k8s-monitor.io/` annotations, over the REPORT_* defaults.

The collection stores the annotations as the pods carry them (shared/sources/kube_objects.py reads
only these); they are read here, at report time, so a bad value never fails a run: it is named in
the workload's report with the default used instead. Annotations (values are strings, as in YAML):

  k8s-monitor.io/ignore: "true"               no recommendation, no patch, left out of savings
  k8s-monitor.io/cpu-percentile: "99"         REPORT_CPU_PERCENTILE for this workload
  k8s-monitor.io/memory-headroom: "0.3"       or "30%": REPORT_MEMORY_HEADROOM
  k8s-monitor.io/min-cpu, max-cpu: "100m"     a CPU quantity: the floor and ceiling of the request
  k8s-monitor.io/min-memory, max-memory: "1Gi"  a memory quantity: the floor and ceiling
  k8s-monitor.io/cpu-limit-policy: "ratio:2"  none, keep or ratio:N: REPORT_CPU_LIMIT_POLICY
  k8s-monitor.io/memory-limit-policy: "keep"  equal-request or keep: REPORT_MEMORY_LIMIT_POLICY
  k8s-monitor.io/min-change-ratio: "0.2"      or "20%": REPORT_MIN_CHANGE_RATIO
  k8s-monitor.io/allow-hpa: "true"            REPORT_ALLOW_HPA
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.core.formats import format_bytes, format_millicores
from shared.domain.rightsizing import RightsizingPolicy
from shared.sources.quantity import QuantityError, cpu_millicores, memory_bytes

PREFIX = "k8s-monitor.io/"


@dataclass(frozen=True)
class WorkloadPolicy:
    """The policy a workload's recommendations follow, whether it is ignored, and what was wrong with
    its annotations (each naming the annotation and the default used instead)."""

    policy: RightsizingPolicy
    ignored: bool = False
    annotations: dict[str, str] = field(default_factory=dict)  # the k8s-monitor.io/ ones its pods carry
    errors: tuple[str, ...] = ()


def _number(low: float, high: float, percent: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip().removesuffix("%")) / 100 if percent and text.strip().endswith("%") \
            else float(text)
        if not low <= value <= high:  # NaN is never in range
            raise ValueError
        return value
    return parse


def _boolean(text: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise ValueError
    return text.strip().lower() == "true"


def _cpu_limit_policy(text: str) -> str:
    value = text.strip()
    if value in ("none", "keep"):
        return value
    if value.startswith("ratio:") and 1 <= float(value.removeprefix("ratio:")) <= 100:
        return value
    raise ValueError


def _memory_limit_policy(text: str) -> str:
    if text.strip() not in ("equal-request", "keep"):
        raise ValueError
    return text.strip()


def _quantity(parse: Callable[[str], int]) -> Callable[[str], int]:
    def positive(text: str) -> int:
        try:
            value = parse(text)
        except QuantityError:
            raise ValueError from None
        if value <= 0:
            raise ValueError
        return value
    return positive


# annotation (after the prefix) -> (policy field, parser, what a good value looks like, the setting it overrides)
_ANNOTATIONS: dict[str, tuple[str, Callable[[str], Any], str, str]] = {
    "cpu-percentile": ("cpu_percentile", _number(0.001, 100), "a number from 0 to 100, like 95",
                       "REPORT_CPU_PERCENTILE"),
    "memory-headroom": ("memory_headroom", _number(0, 10, percent=True), "a fraction or percentage, like 0.2 or 20%",
                        "REPORT_MEMORY_HEADROOM"),
    "min-cpu": ("cpu_floor_millicores", _quantity(cpu_millicores), "a CPU quantity, like 100m",
                "REPORT_CPU_FLOOR_MILLICORES"),
    "max-cpu": ("cpu_max_millicores", _quantity(cpu_millicores), "a CPU quantity, like 2 or 1500m",
                "REPORT_CPU_MAX_MILLICORES"),
    "min-memory": ("memory_floor_bytes", _quantity(memory_bytes), "a memory quantity, like 64Mi",
                   "REPORT_MEMORY_FLOOR_BYTES"),
    "max-memory": ("memory_max_bytes", _quantity(memory_bytes), "a memory quantity, like 4Gi",
                   "REPORT_MEMORY_MAX_BYTES"),
    "cpu-limit-policy": ("cpu_limit_policy", _cpu_limit_policy, "none, keep or ratio:N (N from 1 to 100)",
                         "REPORT_CPU_LIMIT_POLICY"),
    "memory-limit-policy": ("memory_limit_policy", _memory_limit_policy, "equal-request or keep",
                            "REPORT_MEMORY_LIMIT_POLICY"),
    "min-change-ratio": ("min_change_ratio", _number(0, 10, percent=True), "a fraction or percentage, like 0.2",
                         "REPORT_MIN_CHANGE_RATIO"),
    "allow-hpa": ("allow_hpa", _boolean, '"true" or "false"', "REPORT_ALLOW_HPA"),
}
ANNOTATIONS = (*(PREFIX + name for name in _ANNOTATIONS), PREFIX + "ignore")


def workload_policy(annotations: Mapping[str, str], defaults: RightsizingPolicy) -> WorkloadPolicy:
    """`defaults` with each well-formed annotation applied; a bad one is reported and its default kept."""
    changes: dict[str, Any] = {}
    errors = []
    for name, text in sorted(annotations.items()):
        short = name.removeprefix(PREFIX)
        if short not in _ANNOTATIONS:  # ignore, below
            continue
        attribute, parse, good, setting = _ANNOTATIONS[short]
        try:
            changes[attribute] = parse(text)
        except (ValueError, TypeError):
            errors.append(f"{name}: {text[:60]!r} is not {good}; {setting} "
                          f"({_shown(attribute, getattr(defaults, attribute))}) is used")
    ignored = False
    if PREFIX + "ignore" in annotations:
        try:
            ignored = _boolean(annotations[PREFIX + "ignore"])
        except ValueError:
            errors.append(f"{PREFIX}ignore: {annotations[PREFIX + 'ignore'][:60]!r} is not \"true\" or \"false\"; "
                          f"the workload is not ignored")
    if not changes:  # most workloads: the defaults as they are (replace would rebuild and check them)
        return WorkloadPolicy(defaults, ignored, dict(annotations), tuple(errors))
    errors += _contradictions(changes, defaults)
    return WorkloadPolicy(replace(defaults, **changes), ignored, dict(annotations), tuple(errors))


def _contradictions(changes: dict[str, Any], defaults: RightsizingPolicy) -> list[str]:
    """A floor above its ceiling: both are dropped back to the defaults, and said so."""
    errors = []
    for floor, ceiling, low, high in (("cpu_floor_millicores", "cpu_max_millicores", "min-cpu", "max-cpu"),
                                      ("memory_floor_bytes", "memory_max_bytes", "min-memory", "max-memory")):
        low_value = changes.get(floor, getattr(defaults, floor))
        high_value = changes.get(ceiling, getattr(defaults, ceiling))
        if high_value is not None and low_value > high_value and (floor in changes or ceiling in changes):
            errors.append(f"{PREFIX}{low} ({_shown(floor, low_value)}) is above {PREFIX}{high} "
                          f"({_shown(ceiling, high_value)}); both are left at their defaults")
            changes.pop(floor, None)
            changes.pop(ceiling, None)
    return errors


def _shown(attribute: str, value: Any) -> str:
    if value is None:
        return "unset"
    if attribute.endswith("_millicores"):
        return format_millicores(value)
    if attribute.endswith("_bytes"):
        return format_bytes(value)
    if attribute == "memory_headroom":
        return f"{value:.0%}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)
