"""One workload container's figures over the report window, and the totals of groups of them.

Per container: requests and limits (the newest), CPU usage (average, percentile, peak) and memory
working set (average, peak) per pod, and what every pod together requested and used on average
over the window, with the idle part (request minus use). Totals add up their containers.

Averages over time are over the time the window's successful runs covered (each run its own
window_seconds; shared/store/covered_time.py): a pause in collection or a failed run neither lowers
nor raises them, and the same window gives the same figures whenever the report is asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.core.settings import Settings
from shared.domain.costs import CostTotals
from shared.domain.report.flags import Flag, risk_flags
from shared.store.window_usage import ContainerWindowUsage

if TYPE_CHECKING:
    from shared.domain.report.explained import ExplainedContainer


@dataclass
class ContainerFigures:
    """One workload container's line of the report; None where the window has no data for a figure."""

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
    cpu_requested_avg_millicores: float  # every pod together, averaged over the covered time
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

    @property
    def cpu_usage_p95_millicores(self) -> float | None:
        """The 95th percentile of CPU usage per pod; computed when first asked (it costs the most)."""
        return self.usage.cpu_percentile_millicores(95)

    @property
    def name_key(self) -> tuple[str, str, str, str]:
        """Namespace, kind, workload and container: the order of `sort=name` and of ties."""
        return (self.namespace, self.workload_kind, self.workload_name, self.container)


@dataclass
class Totals:
    """Requested, used and idle resources of a group of containers, averaged over the window, and their money."""

    containers: int = 0
    cpu_requested_millicores: float = 0.0
    cpu_used_millicores: float = 0.0
    cpu_idle_millicores: float = 0.0
    memory_requested_bytes: float = 0.0
    memory_used_bytes: float = 0.0
    memory_idle_bytes: float = 0.0
    flags: dict[str, int] = field(default_factory=dict)
    costs: CostTotals = field(default_factory=CostTotals)
    gone: int = 0  # containers of workloads that are gone

    def add(self, c: ExplainedContainer) -> None:
        """Count `c` into these totals: its requested, used and idle resources, its flags and money."""
        self.containers += 1
        self.gone += c.gone
        self.costs.add(c.costs)
        self.cpu_requested_millicores += c.cpu_requested_avg_millicores
        self.cpu_used_millicores += c.cpu_used_avg_millicores
        self.cpu_idle_millicores += c.cpu_idle_millicores or 0
        self.memory_requested_bytes += c.memory_requested_avg_bytes
        self.memory_used_bytes += c.memory_used_avg_bytes
        self.memory_idle_bytes += c.memory_idle_bytes or 0
        for flag in c.flags:
            self.flags[flag.flag] = self.flags.get(flag.flag, 0) + 1


def container_figures(c: ContainerWindowUsage, covered_seconds: int, settings: Settings) -> ContainerFigures:
    """One container's figures and risk flags; averages over time divide by `covered_seconds`, the
    time the runs collecting its namespace covered."""
    ident = c.identity
    cpu_n, memory_n = c.cpu_usage_samples, c.memory_working_set_samples
    cpu_requested = _per_second(c.cpu_requested_millicore_seconds, covered_seconds)
    cpu_used = _per_second(c.cpu_usage_millicore_seconds, covered_seconds)
    memory_requested = _per_second(c.memory_requested_byte_seconds, covered_seconds)
    memory_used = _per_second(c.memory_working_set_byte_seconds, covered_seconds)
    cpu_pod_seconds, memory_pod_seconds = c.cpu_usage_pod_seconds, c.memory_working_set_pod_seconds
    row = ContainerFigures(
        usage=c, namespace=ident.namespace, workload_kind=ident.workload_kind, workload_name=ident.workload_name,
        container=ident.container, cpu_samples=cpu_n, memory_samples=memory_n,
        pods_avg=_per_second(cpu_pod_seconds, covered_seconds) if cpu_n else None,
        cpu_request_millicores=c.cpu_request_millicores, cpu_limit_millicores=c.cpu_limit_millicores,
        memory_request_bytes=c.memory_request_bytes, memory_limit_bytes=c.memory_limit_bytes,
        cpu_usage_avg_millicores=c.cpu_usage_millicore_seconds / cpu_pod_seconds if cpu_pod_seconds else None,
        cpu_usage_max_millicores=c.cpu_usage_max_millicores,
        cpu_requested_avg_millicores=cpu_requested, cpu_used_avg_millicores=cpu_used,
        cpu_idle_millicores=max(0.0, cpu_requested - cpu_used) if cpu_n else None,
        memory_working_set_avg_bytes=(c.memory_working_set_byte_seconds / memory_pod_seconds
                                      if memory_pod_seconds else None),
        memory_working_set_max_bytes=c.memory_working_set_max_bytes,
        memory_requested_avg_bytes=memory_requested, memory_used_avg_bytes=memory_used,
        memory_idle_bytes=max(0.0, memory_requested - memory_used) if memory_n else None,
        cpu_throttled_ratio_max=c.cpu_throttled_ratio_max, restart_count_max=c.restart_count_max,
        oom_terminations=c.oom_killed_samples > 0, oom_events=c.oom_events_sum,
    )
    row.flags = risk_flags(row, settings)
    return row


def _per_second(value_seconds: float, covered_seconds: int) -> float:
    """A sum over time (value x seconds) as its average over the covered time; 0 without any."""
    return value_seconds / covered_seconds if covered_seconds else 0.0
