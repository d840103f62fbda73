"""Money: OpenCost's prices over a 730-hour month; savings only from lowered requests, raises as cost to fix risk."""

from __future__ import annotations

import pytest

from shared.domain.costs import ContainerCosts, CostTotals, Prices, container_costs
from shared.domain.rightsizing import Advice, Recommendation

GiB = 1024**3
MiB = 1024**2
PRICES = Prices(cpu_core_hour=0.031611, memory_gib_hour=0.004549, currency="USD")


def recommendation(cpu: Advice, memory: Advice) -> Recommendation:
    keep = Advice(None, None, None, "keep", "")
    return Recommendation(cpu, keep, memory, keep, 1.0, False, "")


def test_requested_idle_savings_and_cost_to_fix_risk_by_hand() -> None:
    lowered_cpu = Advice(500, 200, 200, "lower", "")
    raised_memory = Advice(GiB, 1536 * MiB, 1536 * MiB, "raise", "")
    costs = container_costs(1000, 600, 2 * GiB, GiB, 2.0, recommendation(lowered_cpu, raised_memory), PRICES)
    # (1 core x 0.031611 + 2 GiB x 0.004549) x 730
    assert costs.requested_per_month == pytest.approx(29.71757)
    # (0.6 core x 0.031611 + 1 GiB x 0.004549) x 730
    assert costs.idle_per_month == pytest.approx(17.166388)
    # (500m - 200m) x 2 pods = 0.6 core x 0.031611 x 730
    assert costs.savings_per_month == pytest.approx(13.845618)
    # (1.5Gi - 1Gi) x 2 pods = 1 GiB x 0.004549 x 730: a raise is never a saving
    assert costs.cost_to_fix_risk_per_month == pytest.approx(3.32077)


@pytest.mark.parametrize(("advice", "saved", "added"), [
    (Advice(500, 480, 500, "keep", ""), 0.0, 0.0),
    (Advice(500, None, None, "unknown", ""), 0.0, 0.0),
    (Advice(None, 250, 250, "set", ""), 0.0, 0.25 * 3 * 0.031611 * 730),
    (Advice(100, 300, 300, "raise", ""), 0.0, 0.2 * 3 * 0.031611 * 730),
])
def test_only_a_lowered_request_saves(advice: Advice, saved: float, added: float) -> None:
    keep = Advice(GiB, GiB, GiB, "keep", "")
    costs = container_costs(0, 0, 0, 0, 3.0, recommendation(advice, keep), PRICES)
    assert (costs.savings_per_month, costs.cost_to_fix_risk_per_month) == (pytest.approx(saved), pytest.approx(added))


def test_excluded_containers_count_in_requested_and_idle_totals_but_not_in_savings() -> None:
    totals = CostTotals()
    totals.add(ContainerCosts(10.0, 4.0, 3.0, 1.0))
    totals.add(ContainerCosts(20.0, 5.0, 7.0, 2.0, counted=False, excluded="gone"))
    assert (totals.requested_per_month, totals.idle_per_month, totals.savings_per_month,
            totals.cost_to_fix_risk_per_month) == (30.0, 9.0, 3.0, 1.0)


def test_prices_come_from_the_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shared.core.settings import load_settings

    assert Prices.from_settings(load_settings(database_path=tmp_path / "db")) == PRICES
    custom = Prices.from_settings(load_settings(database_path=tmp_path / "db", price_cpu_core_hour=0.05,
                                                price_memory_gib_hour=0.01, currency="EUR"))
    assert custom.per_month(2000, 4 * GiB) == pytest.approx((2 * 0.05 + 4 * 0.01) * 730)
    assert custom.currency == "EUR"
