"""The fleet's rows as the collections store them: refreshed once they are FLEET_REFRESH_MINUTES old, read
as they are, and computed as a report does for other windows and settings, on both backends."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from shared.core.settings import ConfigError, Settings, load_settings
from shared.domain.report.build import build_report
from shared.domain.report.figures import Totals
from shared.domain.report.fleet import ClusterRow, build_fleet
from shared.domain.report.query import parse_report_query
from shared.domain.report.stored_totals import fleet_windows, refresh_fleet_totals
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.store.connection import open_store
from tests.conftest import BACKENDS, FakeClock
from tests.support.store_rows import store_rows

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def fleet_row(settings: Settings, now: float, **params: str) -> ClusterRow:
    [row] = build_fleet(settings, parse_report_query(params, settings, now), now).clusters
    return row


def live_totals(settings: Settings, now: float, **params: str) -> Totals:
    """What the cluster's report computes over the window, container by container."""
    conn = open_store(settings, readonly=True)
    try:
        return build_report(conn, replace(parse_report_query(params, settings, now), limit=0), settings, now).cluster
    finally:
        conn.close()


def collect(settings: Settings, clock: FakeClock, runs: int = 1) -> float:
    """`runs` collections 5 minutes apart; the clock's time during the last one (when it stored any totals due)."""
    for _ in range(runs):
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
        assert status == 200, body
        clock.advance(300)
    return clock.now - 300


def test_a_collection_stores_the_totals_the_fleet_then_reads_as_they_are(settings: Settings, clock: FakeClock) -> None:
    stored_at = collect(settings, clock)

    for window in ("7d", "30d"):  # REPORT_WINDOW_DAYS and FLEET_WINDOW_DAYS
        row = fleet_row(settings, clock.now, window=window)
        assert row.totals_computed_at == stored_at
        assert row.totals == live_totals(settings, stored_at, window=window)
        assert row.totals.containers > 0 and row.totals.costs.requested_per_month > 0

    assert fleet_row(settings, clock.now, window="14d").totals_computed_at == clock.now  # not a stored window
    assert fleet_row(settings, clock.now, window="6h").totals_computed_at == clock.now  # slides every second


def test_the_totals_are_refreshed_once_they_are_fleet_refresh_minutes_old(settings: Settings, clock: FakeClock) -> None:
    stored_at = collect(settings, clock)
    collect(settings, clock, runs=11)  # within the hour: the fleet shows the totals as of the first
    row = fleet_row(settings, clock.now, window="7d")
    assert row.totals_computed_at == stored_at and row.last_successful_collection == clock.now - 300
    assert row.totals == live_totals(settings, stored_at, window="7d")
    assert row.totals != live_totals(settings, clock.now, window="7d")  # eleven runs later

    refreshed_at = collect(settings, clock)  # an hour after the first
    assert refreshed_at == stored_at + 3600
    row = fleet_row(settings, clock.now, window="7d")
    assert row.totals_computed_at == refreshed_at and row.totals == live_totals(settings, clock.now, window="7d")

    every_run = settings.model_copy(update={"fleet_refresh_minutes": 0})
    assert collect(every_run, clock) == fleet_row(every_run, clock.now, window="7d").totals_computed_at


def test_a_reader_that_asks_otherwise_gets_the_totals_computed(settings: Settings, clock: FakeClock) -> None:
    stored_at = collect(settings, clock)

    other_prices = settings.model_copy(update={"price_cpu_core_hour": 0.5})
    row = fleet_row(other_prices, clock.now, window="7d")
    assert row.totals_computed_at == clock.now and row.totals == live_totals(other_prices, clock.now, window="7d")
    grouped = settings.model_copy(update={"report_group_by_label": "team"})  # groups are not in the totals
    assert fleet_row(grouped, clock.now, window="7d").totals_computed_at == stored_at
    filtered = fleet_row(settings, clock.now, window="7d", namespace="shop")
    assert filtered.totals_computed_at == clock.now
    assert filtered.totals == live_totals(settings, clock.now, window="7d", namespace="shop")

    next_day = clock.now + 86_400  # a new day's windows: none stored until its first collection
    assert fleet_row(settings, next_day, window="7d").totals_computed_at == next_day
    clock.now = next_day
    assert collect(settings, clock) == fleet_row(settings, clock.now, window="7d").totals_computed_at
    assert len(store_rows(settings, "SELECT window_start FROM report_totals")) == 2  # the earlier day's are gone


def test_a_refresh_waits_for_a_later_collection_when_the_time_left_is_shorter_than_it_took(
        settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    stored_at = collect(settings, clock)
    took = max(row[0] for row in store_rows(settings, "SELECT compute_seconds FROM report_totals"))
    due = settings.model_copy(update={"fleet_refresh_minutes": 0})

    with caplog.at_level(logging.INFO):
        assert refresh_fleet_totals(due, clock.now, budget_seconds=took / 2) == 0
    assert "fleet totals over 7d not refreshed" in caplog.text and "a later collection refreshes them" in caplog.text
    assert {row[0] for row in store_rows(settings, "SELECT computed_at FROM report_totals")} == {stored_at}

    assert refresh_fleet_totals(due, clock.now, budget_seconds=60) == 2
    assert {row[0] for row in store_rows(settings, "SELECT computed_at FROM report_totals")} == {clock.now}


def test_the_fleet_windows_are_the_report_default_and_fleet_window_days(
        settings: Settings, clock: FakeClock) -> None:
    def windows(**overrides: object) -> list[str]:
        return [window.label for window in fleet_windows(settings.model_copy(update=overrides), clock.now)]

    assert windows() == ["7d", "30d"]
    assert windows(report_window_days=14.0, fleet_window_days=(30, 90)) == ["14d", "30d", "90d"]
    assert windows(report_window_days=0.5, fleet_window_days=()) == []  # under a day: computed when asked
    assert windows(fleet_window_days=(30, 365)) == ["7d", "30d"]  # beyond the retained history
    assert load_settings(fleet_window_days="30, 7,30").fleet_window_days == (7, 30)
    with pytest.raises(ConfigError, match="FLEET_WINDOW_DAYS: not a number of days from 1 to 3650: 0"):
        load_settings(fleet_window_days="30,0")
