"""Day rollups and the report's sources: the same numbers from raw samples, hourly and day rollups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared import packed_histogram
from shared.config import Settings, load_settings
from shared.daily_rollups import FoldResult, coverage, fold_samples
from shared.report import build_report, parse_report_query, report_json
from shared.retention import apply_retention
from shared.store import connect
from shared.usage_histogram import MAX_RELATIVE_ERROR, histogram_of, merge, percentile
from shared.window_usage import parse_window
from tests.report_history import History, random_history, reference_report

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC
HOURS = 60


def settings_for(path: Path) -> Settings:
    return load_settings(database_path=path, retention_raw_days=1, retention_hourly_days=90,
                         collect_interval_seconds=300)


def build(path: Path, every_phase: bool = True) -> tuple[sqlite3.Connection, Settings]:
    settings = settings_for(path)
    conn = connect(path)
    random_history(History(conn), NOW, hours=HOURS, every_phase=every_phase)
    return conn, settings


def day_rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM daily_rollups ORDER BY container_id, day").fetchall()


def report(conn: sqlite3.Connection, settings: Settings, window: str = "3d") -> dict:
    query = parse_report_query({"window": window, "limit": "all"}, settings, NOW)
    return report_json(build_report(conn, query, settings, NOW))


def containers(body: dict) -> dict[tuple[str, str, str], dict]:
    return {(c["namespace"], c["workload_name"], c["container"]): c for c in body["containers"]}


def test_folding_after_every_run_gives_the_day_rows_of_one_fold(tmp_path: Path) -> None:
    once, _ = build(tmp_path / "once.db")
    result = fold_samples(once, NOW, 90)
    assert result.complete and result.samples_folded == once.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    runs = connect(tmp_path / "runs.db")  # the same samples, stored run by run and folded after each
    runs.execute("ATTACH ? AS source", (str(tmp_path / "once.db"),))
    for table in ("workloads", "containers", "pods", "runs"):
        runs.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
    for (ts,) in runs.execute("SELECT DISTINCT ts FROM source.samples ORDER BY ts").fetchall():
        runs.execute("INSERT INTO samples SELECT * FROM source.samples WHERE ts = ?", (ts,))
        fold_samples(runs, ts, 90)
    assert day_rows(runs) == day_rows(once)
    assert len({row[1] for row in day_rows(once)}) == 3  # 60 hours up to 13:00 touch three UTC days


def test_a_fold_stopped_by_its_deadline_goes_on_where_it_stopped(tmp_path: Path) -> None:
    class Chunks:
        """A deadline with time for `n` chunks."""

        def __init__(self, n: int):
            self.left = n

        def remaining(self) -> float:
            self.left -= 1
            return self.left

    stopped, _ = build(tmp_path / "stopped.db")
    first = fold_samples(stopped, NOW, 90, Chunks(3))
    assert not first.complete and 0 < first.samples_folded
    assert coverage(stopped).folded_until < NOW
    second = fold_samples(stopped, NOW, 90)
    assert second.complete
    assert first.samples_folded + second.samples_folded == stopped.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    whole, _ = build(tmp_path / "whole.db")
    fold_samples(whole, NOW, 90)
    assert day_rows(stopped) == day_rows(whole)


def test_day_rows_past_the_hourly_retention_are_deleted(tmp_path: Path) -> None:
    conn, _ = build(tmp_path / "db")
    fold_samples(conn, NOW, 90)
    days = sorted({row[1] for row in day_rows(conn)})
    result = fold_samples(conn, days[-1] + 86_400, 1)  # a day later, keeping one day
    assert result.day_rows_deleted > 0
    assert sorted({row[1] for row in day_rows(conn)}) == days[-1:]


def expected_figures(conn: sqlite3.Connection, window: str = "3d") -> tuple[dict, int]:
    w = parse_window(window, NOW, 90)
    span = NOW - (NOW - HOURS * 3600 + 300 - 300)  # from the first collection's usage window to now
    return reference_report(conn, w.start, w.end, span), span


def assert_matches(body: dict, expected: dict, histogram_percentile: bool) -> None:
    got = containers(body)
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        for name in ("cpu_samples", "memory_samples", "cpu_request_millicores", "cpu_limit_millicores",
                     "memory_request_bytes", "memory_limit_bytes", "cpu_usage_max_millicores",
                     "memory_working_set_max_bytes", "cpu_throttled_ratio_max", "oom_killed"):
            assert row[name] == want[name], (key, name)
        for name, tolerance in (("cpu_usage_avg_millicores", 0.05), ("cpu_idle_millicores", 0.05),
                                ("memory_working_set_avg_bytes", 0.5), ("memory_idle_bytes", 0.5)):
            assert row[name] == pytest.approx(want[name], abs=tolerance), (key, name)
        p95 = row["cpu_usage_p95_millicores"]
        if histogram_percentile:
            # the same buckets as the hourly rollups' histograms, computed by their own module
            assert p95 == pytest.approx(percentile(merge([histogram_of(want["cpu_values"])]), 95), abs=0.05)
            assert abs(p95 - want["cpu_usage_p95_millicores"]) <= MAX_RELATIVE_ERROR * want["cpu_usage_p95_millicores"]
            assert "from usage histograms, within 4.4%" in row["reasons"]["cpu_usage_p95_millicores"]
        else:
            assert p95 == want["cpu_usage_p95_millicores"]


def sources(body: dict) -> list[str]:
    return [piece["source"] for piece in body["window"]["sources"]]


def test_the_report_reads_the_same_numbers_from_raw_samples_and_day_rollups(tmp_path: Path) -> None:
    conn, settings = build(tmp_path / "db")
    expected, span = expected_figures(conn)
    raw = report(conn, settings)
    assert sources(raw) == ["raw"] and raw["window"]["span_seconds"] == span
    assert_matches(raw, expected, histogram_percentile=False)

    fold_samples(conn, NOW, 90)
    folded = report(conn, settings)
    assert sources(folded) == ["daily"]
    assert_matches(folded, expected, histogram_percentile=True)

    apply_retention(settings, clock=lambda: NOW)  # raw samples older than a day go; the day rows stay
    assert conn.execute("SELECT MIN(ts) FROM samples").fetchone()[0] >= NOW - 86_400 - 3600
    assert containers(report(conn, settings)) == containers(folded)


def test_the_report_fills_what_was_never_folded_from_the_hourly_rollups(tmp_path: Path, monkeypatch) -> None:
    # The hourly rollups count the usage of pods in every phase, so this history has Running pods only.
    conn, settings = build(tmp_path / "db", every_phase=False)
    expected, _ = expected_figures(conn)
    monkeypatch.setattr("shared.retention.fold_samples", lambda *args: FoldResult(complete=False))  # out of budget
    apply_retention(settings, clock=lambda: NOW)  # hours older than a day: rolled up, raw samples deleted
    monkeypatch.undo()
    rolled = report(conn, settings)
    assert sources(rolled) == ["hourly", "raw"]
    assert_matches(rolled, expected, histogram_percentile=True)

    fold_samples(conn, NOW, 90)  # starts at the hourly watermark: the rolled-up hours were never folded
    watermark = conn.execute("SELECT MAX(hour) + 3600 FROM hourly_rollups").fetchone()[0]
    assert coverage(conn).folded_from == watermark
    both = report(conn, settings)
    assert sources(both) == ["hourly", "daily"]
    assert_matches(both, expected, histogram_percentile=True)


def test_a_fold_that_fell_behind_retention_starts_over_at_the_hourly_watermark(tmp_path: Path, monkeypatch) -> None:
    source, _ = build(tmp_path / "source.db", every_phase=False)
    expected, _ = expected_figures(source)
    source.close()
    settings = settings_for(tmp_path / "db")
    conn = connect(settings.database_path)
    conn.execute("ATTACH ? AS source", (str(tmp_path / "source.db"),))
    for table in ("workloads", "containers", "pods", "runs"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
    early = NOW - 50 * 3600
    conn.execute("INSERT INTO samples SELECT * FROM source.samples WHERE ts < ?", (early,))
    fold_samples(conn, early, 90)  # the folds stop here (say, every later pass ran out of budget folding)
    conn.execute("INSERT INTO samples SELECT * FROM source.samples WHERE ts >= ?", (early,))
    monkeypatch.setattr("shared.retention.fold_samples", lambda *args: FoldResult(complete=False))
    apply_retention(settings, clock=lambda: NOW)  # deletes samples older than a day, unfolded ones too
    monkeypatch.undo()

    fold_samples(conn, NOW, 90)
    watermark = conn.execute("SELECT MAX(hour) + 3600 FROM hourly_rollups").fetchone()[0]
    assert coverage(conn).folded_from == watermark > early
    body = report(conn, settings)
    assert sources(body) == ["hourly", "daily"]
    assert_matches(body, expected, histogram_percentile=True)


def test_packed_histograms_add_and_subtract_bucket_by_bucket() -> None:
    week = [0, 0, 3, 120, 130, 131, 4000, 70_000] * 500
    day = [5, 5, 900]
    packed_week, packed_day = packed_histogram.pack_values(week), packed_histogram.pack_values(day)
    cumulative = packed_week + packed_day
    assert packed_histogram.from_blob(packed_histogram.to_blob(cumulative)) == cumulative
    assert cumulative - packed_week == packed_day
    assert packed_histogram.total(cumulative) == len(week) + len(day)
    assert packed_histogram.pack_pairs(histogram_of(week)) == packed_week
    for percent in (1, 50, 95, 99, 100):
        assert packed_histogram.percentile(cumulative, percent) == percentile(merge([histogram_of(week + day)]), percent)
    assert packed_histogram.to_blob(0) is None and packed_histogram.percentile(0, 95) is None
