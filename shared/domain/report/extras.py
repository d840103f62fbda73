"""What a report may carry beyond requests and usage, for the page to show when it is there.

HPAs, the confidence of a recommendation, money (idle cost, savings, the cost of fixing risks), the
patch to apply, workloads that are gone and change markers come with the report's rightsizing
(ExplainedContainer, Totals and Report of shared/domain/report/). The page reads them here, by
name, and shows each only when the report has it: one place that knows those names, so the views
render whichever report they are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.core.formats import utc_minute
from shared.domain.report.charts import Marker


@dataclass(frozen=True)
class Extras:
    """A container's HPAs (in words), confidence, change markers, and when it was last seen if gone."""

    hpas: list[str] = field(default_factory=list)
    confidence: float | None = None  # 0 to 1
    low_confidence: bool = False
    confidence_reason: str = ""
    markers: list[Marker] = field(default_factory=list)
    gone_since: str | None = None


@dataclass(frozen=True)
class Money:
    """A group's money per month in `currency`: what its idle requests cost, what the recommendations
    save, and what fixing its risks (raising requests) costs."""

    currency: str
    idle_per_month: float
    savings_per_month: float
    cost_to_fix_per_month: float


def container_extras(c: Any) -> Extras:
    """What the report carries about container `c` beyond its figures; empty where it carries nothing."""
    r = c.recommendation
    confidence = getattr(r, "confidence", None)
    changes = getattr(c, "change_impacts", None) or ()
    return Extras(
        hpas=[_hpa_text(hpa) for hpa in getattr(c, "hpas", None) or ()],
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        low_confidence=bool(getattr(r, "low_confidence", False)),
        confidence_reason=str(getattr(r, "confidence_reason", "")),
        markers=[Marker(int(change.ts), str(getattr(change, "label", change))) for change in changes],
        gone_since=utc_minute(getattr(c, "last_seen_ts", None)) if getattr(c, "gone", False) else None,
    )


def money(report: Any, totals: Any) -> Money | None:
    """The money of a group's totals, or None when the report has no prices."""
    prices, costs = getattr(report, "prices", None), getattr(totals, "costs", None)
    if prices is None or costs is None:
        return None
    return Money(prices.currency, costs.idle_per_month, costs.savings_per_month, costs.cost_to_fix_risk_per_month)


def currency(report: Any) -> str | None:
    """The report's currency (CURRENCY), or None when it has no prices."""
    prices = getattr(report, "prices", None)
    return None if prices is None else str(prices.currency)


def savings_per_month(c: Any) -> float | None:
    """What applying container `c`'s recommendation saves a month; None when the report has no money."""
    costs = getattr(c, "costs", None)
    return None if costs is None else float(costs.savings_per_month)


def workload_patch(report: Any, workload: str) -> str | None:
    """The patch to apply to `workload` (`namespace/Kind/name`), when the report has one for it."""
    return next((patch.text for patch in getattr(report, "patches", None) or () if patch.key == workload), None)


def format_money(amount: float, currency_code: str) -> str:
    """`1,234.50 USD`."""
    return f"{amount:,.2f} {currency_code}"


def _hpa_text(hpa: Any) -> str:
    metrics = ", ".join(metric.describe() for metric in hpa.metrics)
    current = "" if hpa.current_replicas is None else f", {hpa.current_replicas} now"
    return (f"HPA {hpa.name}: {hpa.min_replicas} to {hpa.max_replicas} replicas{current}"
            + (f", scaling on {metrics}" if metrics else ""))
