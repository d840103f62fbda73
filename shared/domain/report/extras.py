"""What a report carries beyond requests and usage, as the page shows it.

HPAs, the confidence of a recommendation, money (idle cost, savings, the cost of fixing risks), the
patch to apply, workloads that are gone and change markers come with the report's rightsizing
(ExplainedContainer, Totals and Report of shared/domain/report/). The page reads them here: one
place that turns them into what the views show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.formats import utc_minute
from shared.domain.report.charts import Marker

if TYPE_CHECKING:
    from shared.domain.report.build import Report
    from shared.domain.report.explained import ExplainedContainer
    from shared.domain.report.figures import Totals
    from shared.store.workload_facts import HpaWindow


@dataclass(frozen=True)
class Extras:
    """A container's HPAs (in words), confidence, change markers, and when it was last seen if gone."""

    hpas: list[str]
    confidence: float  # 0 to 1
    low_confidence: bool  # below REPORT_MIN_CONFIDENCE
    confidence_reason: str
    markers: list[Marker]
    gone_since: str | None  # None: not gone


@dataclass(frozen=True)
class Money:
    """A group's money per month in `currency`: what its idle requests cost, what the recommendations
    save, and what fixing its risks (raising requests) costs."""

    currency: str
    idle_per_month: float
    savings_per_month: float
    cost_to_fix_per_month: float


def container_extras(c: ExplainedContainer) -> Extras:
    """What the report carries about container `c` beyond its figures."""
    r = c.recommendation
    return Extras(
        hpas=[_hpa_text(hpa) for hpa in c.hpas],
        confidence=r.confidence,
        low_confidence=r.low_confidence,
        confidence_reason=r.confidence_reason,
        markers=[Marker(change.ts, change.label) for change in c.change_impacts],
        gone_since=utc_minute(c.last_seen_ts) if c.gone else None,
    )


def money(report: Report, totals: Totals) -> Money:
    """The money of a group's totals."""
    costs = totals.costs
    return Money(report.prices.currency, costs.idle_per_month, costs.savings_per_month,
                 costs.cost_to_fix_risk_per_month)


def savings_per_month(c: ExplainedContainer) -> float:
    """What applying container `c`'s recommendation saves a month."""
    return c.costs.savings_per_month


def workload_patch(report: Report, workload: str) -> str | None:
    """The patch to apply to `workload` (`namespace/Kind/name`), when the report has one for it."""
    return next((patch.text for patch in report.patches if patch.key == workload), None)


def format_money(amount: float, currency_code: str) -> str:
    """`1,234.50 USD`."""
    return f"{amount:,.2f} {currency_code}"


def _hpa_text(hpa: HpaWindow) -> str:
    metrics = ", ".join(metric.describe() for metric in hpa.metrics)
    current = "" if hpa.current_replicas is None else f", {hpa.current_replicas} now"
    return (f"HPA {hpa.name}: {hpa.min_replicas} to {hpa.max_replicas} replicas{current}"
            + (f", scaling on {metrics}" if metrics else ""))
