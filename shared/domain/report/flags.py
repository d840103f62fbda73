"""Risk flags of a container over the report window: what may hurt it, each with what was seen.

OOM-killed, CPU throttled, memory near its limit (the thresholds are the alerts' settings), no
requests (the scheduler reserves nothing) and no limits; `hpa_at_max` (an HPA at its maximum for most
of the window) is added with the workload's HPAs (shared/domain/report/explained.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.formats import format_bytes
from shared.core.settings import Settings

if TYPE_CHECKING:
    from shared.domain.report.figures import ContainerFigures

FLAG_LABELS = {"oom_killed": "OOM-killed", "cpu_throttled": "CPU throttled", "memory_near_limit": "memory near limit",
               "no_requests": "no requests", "no_limits": "no limits", "hpa_at_max": "HPA at max"}


@dataclass
class Flag:
    """A risk: `flag` is its stable name (oom_killed, cpu_throttled, ...), `reason` says what was seen."""

    flag: str
    reason: str


def risk_flags(c: ContainerFigures, settings: Settings) -> list[Flag]:
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
