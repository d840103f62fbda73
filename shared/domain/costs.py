"""Money: what requested resources cost per month, what of it sits idle, and what the recommendations save.

Prices are OpenCost's defaults unless set: PRICE_CPU_CORE_HOUR (0.031611 per vCPU-hour) and
PRICE_MEMORY_GIB_HOUR (0.004549 per GiB-hour, OpenCost's 0.004237 per GB-hour), in CURRENCY, over
OpenCost's 730-hour month. A container's cost is what its pods request (the scheduler reserves it,
used or not), averaged over the window; idle cost is requested minus used (the report's idle
figures). Savings per month are what lowering the requests to the recommendations would free:
(current - recommended) x the pods running on average, for each request the recommendation lowers.
A raise is never a saving: it is the cost to fix a risk (more CPU for a throttled container, more
memory for an OOM-killed one, a request where none is set). Workloads that are gone, ignored by
annotation, or in a namespace of REPORT_SAVINGS_EXCLUDE (kube-system by default: managed, not
yours to resize) are left out of the savings totals.

Shared by the report and /metrics: nothing here reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.formats import GiB
from shared.core.settings import Settings
from shared.domain.rightsizing import LOWER, RAISE, SET, Advice, Recommendation

HOURS_PER_MONTH = 730  # OpenCost's month: 365 days x 24 hours / 12


@dataclass(frozen=True)
class Prices:
    """What a core and a GiB of memory cost per hour, and the currency they are in."""

    cpu_core_hour: float
    memory_gib_hour: float
    currency: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        """PRICE_CPU_CORE_HOUR, PRICE_MEMORY_GIB_HOUR and CURRENCY."""
        return cls(settings.price_cpu_core_hour, settings.price_memory_gib_hour, settings.currency)

    def per_month(self, cpu_millicores: float, memory_bytes: float) -> float:
        """What this much CPU and memory, held for a month, costs."""
        per_hour = cpu_millicores / 1000 * self.cpu_core_hour + memory_bytes / GiB * self.memory_gib_hour
        return per_hour * HOURS_PER_MONTH


@dataclass(frozen=True)
class ContainerCosts:
    """One workload container's money per month (every pod together). `counted` says whether its savings
    and cost to fix risk count in the totals; `excluded` says why not."""

    requested_per_month: float
    idle_per_month: float
    savings_per_month: float
    cost_to_fix_risk_per_month: float
    counted: bool = True
    excluded: str | None = None


def container_costs(cpu_requested_millicores: float, cpu_idle_millicores: float | None,
                    memory_requested_bytes: float, memory_idle_bytes: float | None, pods: float | None,
                    recommendation: Recommendation, prices: Prices, excluded: str | None = None) -> ContainerCosts:
    """The money of one container: requested and idle (window averages of every pod together) and what
    applying `recommendation` to its `pods` (running on average) would save or cost."""
    pods = pods or 0.0
    cpu_saved, cpu_added = _delta(recommendation.cpu_request, pods)
    memory_saved, memory_added = _delta(recommendation.memory_request, pods)
    return ContainerCosts(
        requested_per_month=prices.per_month(cpu_requested_millicores, memory_requested_bytes),
        idle_per_month=prices.per_month(cpu_idle_millicores or 0.0, memory_idle_bytes or 0.0),
        savings_per_month=prices.per_month(cpu_saved, memory_saved),
        cost_to_fix_risk_per_month=prices.per_month(cpu_added, memory_added),
        counted=excluded is None, excluded=excluded,
    )


def _delta(advice: Advice, pods: float) -> tuple[float, float]:
    """(freed, added) by applying one request's advice to `pods` pods: a lowered request frees, a raised or
    newly set one adds; keep, unknown and limits neither."""
    if advice.recommended is None:
        return 0.0, 0.0
    if advice.action == LOWER and advice.current is not None:
        return (advice.current - advice.recommended) * pods, 0.0
    if advice.action == RAISE and advice.current is not None:
        return 0.0, (advice.recommended - advice.current) * pods
    if advice.action == SET:
        return 0.0, advice.recommended * pods
    return 0.0, 0.0


@dataclass
class CostTotals:
    """The money of a group of containers: requested and idle of all, savings and cost to fix risk of the
    counted ones (not gone, ignored or excluded)."""

    requested_per_month: float = 0.0
    idle_per_month: float = 0.0
    savings_per_month: float = 0.0
    cost_to_fix_risk_per_month: float = 0.0

    def add(self, costs: ContainerCosts) -> None:
        """Count one container in."""
        self.requested_per_month += costs.requested_per_month
        self.idle_per_month += costs.idle_per_month
        if costs.counted:
            self.savings_per_month += costs.savings_per_month
            self.cost_to_fix_risk_per_month += costs.cost_to_fix_risk_per_month
