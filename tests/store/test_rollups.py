"""Day rollups and the report's sources: the same numbers from raw samples, hourly and day rollups."""

from __future__ import annotations

import ast
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core.settings import Settings, load_settings
from shared.domain.report.build import build_report
from shared.domain.report.output import report_json
from shared.domain.report.query import parse_report_query
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.store.connection import connect
from shared.store.daily_rollups import FoldResult, coverage, fold_samples
from shared.store.histograms import MAX_RELATIVE_ERROR, from_blob, pack_values, percentile, to_blob
from shared.store.retention import apply_retention
from shared.store.window_usage import parse_window
from tests.conftest import make_settings
from tests.support.report_history import (
    SAMPLE_TS,
    SAMPLES,
    History,
    Sample,
    covered_seconds,
    random_history,
    reference_report,
)
from tests.support.servers import REPO

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC
HOURS = 60
DAY = 86_400


def settings_for(path: Path) -> Settings:
    return load_settings(database_path=path, retention_raw_days=1, retention_hourly_days=90,
                         collect_interval_seconds=300)


def build(path: Path, hours: int = HOURS) -> tuple[sqlite3.Connection, Settings]:
    """60 hours up to NOW of a few workloads, with Pending and Succeeded pods, a mid-hour request change ..."""
    settings = settings_for(path)
    conn = connect(path)
    random_history(History(conn), NOW, hours=hours)
    return conn, settings


def replay(conn: sqlite3.Connection, source: Path, runs: list[int], fold: bool = True) -> None:
    """Store the source database's runs again, in the order given, each with a new id and its own
    transaction as a collector commits them, folding after each as retention does."""
    conn.execute("ATTACH ? AS source", (str(source),))
    if not conn.execute("SELECT 1 FROM workloads LIMIT 1").fetchone():
        for table in ("workloads", "containers", "pods"):
            conn.execute(f"INSERT INTO {table} SELECT * FROM source.{table}")
        # the spans' runs are those replayed: each span reaches from its first to its last one
        conn.execute("INSERT INTO container_spans SELECT id, pod_id, container_id, 1 << 62, 0, phase,"
                     " cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes"
                     " FROM source.container_spans")
    for source_run in runs:
        run_id = conn.execute("INSERT INTO runs (trigger, started_at, finished_at, status, window_seconds)"
                              " SELECT trigger, started_at, finished_at, status, window_seconds FROM source.runs"
                              " WHERE id = ?", (source_run,)).lastrowid
        conn.execute("INSERT INTO samples SELECT ?, span_id, cpu_usage_avg_millicores, cpu_usage_max_millicores,"
                     " memory_working_set_avg_bytes, memory_working_set_max_bytes, cpu_throttled_ratio,"
                     " restart_count, last_termination_reason, oom_events FROM source.samples WHERE run_id = ?",
                     (run_id, source_run))
        conn.execute("UPDATE container_spans SET first_run_id = MIN(first_run_id, ?1),"
                     " last_run_id = MAX(last_run_id, ?1) WHERE id IN (SELECT span_id FROM samples WHERE run_id = ?1)",
                     (run_id,))
        if fold:
            fold_samples(conn, NOW, 90)
    conn.execute("DETACH source")


def source_runs(path: Path, where: str = "1", *params: object) -> list[int]:
    """The source's run ids, oldest first."""
    conn = connect(path, readonly=True)
    try:
        return [row[0] for row in conn.execute(f"SELECT id FROM runs WHERE {where} ORDER BY started_at", params)]
    finally:
        conn.close()


def day_rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM daily_rollups ORDER BY container_id, day").fetchall()


def report(conn: sqlite3.Connection, settings: Settings, window: str = "3d", now: float = NOW) -> dict:
    query = parse_report_query({"window": window, "limit": "all"}, settings, now)
    return report_json(build_report(conn, query, settings, now))


def containers(body: dict) -> dict[tuple[str, str, str], dict]:
    return {(c["namespace"], c["workload_name"], c["container"]): c for c in body["containers"]}


def sources(body: dict) -> list[str]:
    return [piece["source"] for piece in body["window"]["sources"]]


@pytest.fixture
def day_rows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-day windows read day rows, as they do once a window holds more raw samples than are cheap."""
    monkeypatch.setattr("shared.store.window_usage.RAW_WINDOW_MAX_SAMPLES", 0)


@pytest.mark.parametrize("order", ["oldest first", "newest first", "shuffled"])
def test_day_rows_are_the_same_whatever_order_the_runs_come_in(tmp_path: Path, order: str) -> None:
    once, _ = build(tmp_path / "once.db", hours=40)  # 40 hours up to 13:00 touch three UTC days
    fold_samples(once, NOW, 90)
    runs = source_runs(tmp_path / "once.db")
    if order == "newest first":  # every run is late: its day, or an earlier one, was folded already
        runs.reverse()
    elif order == "shuffled":
        random.Random(1).shuffle(runs)

    replayed = connect(tmp_path / "replayed.db")
    replay(replayed, tmp_path / "once.db", runs)

    assert len({row[1] for row in day_rows(once)}) == 3
    assert day_rows(replayed) == day_rows(once)


def test_day_rows_are_the_same_when_containers_are_folded_a_few_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large cluster folds its containers in groups of ids; late runs too (shuffled), so later days'
    running totals are updated group by group."""
    once, _ = build(tmp_path / "once.db", hours=40)
    fold_samples(once, NOW, 90)
    runs = source_runs(tmp_path / "once.db")
    random.Random(2).shuffle(runs)
    monkeypatch.setattr("shared.store.daily_rollups.FOLD_CONTAINERS", 2)

    replayed = connect(tmp_path / "replayed.db")
    replay(replayed, tmp_path / "once.db", runs)

    assert replayed.execute("SELECT COUNT(DISTINCT container_id) FROM daily_rollups").fetchone()[0] > 3 * 2
    assert day_rows(replayed) == day_rows(once)


def test_a_fold_stopped_by_its_deadline_goes_on_where_it_stopped(tmp_path: Path) -> None:
    class Chunks:
        """A deadline with time for `n` transactions."""

        def __init__(self, n: int):
            self.left = n

        def remaining(self) -> float:
            self.left -= 1
            return self.left

    stopped, _ = build(tmp_path / "stopped.db")
    first = fold_samples(stopped, NOW, 90, Chunks(3))
    assert not first.complete and first.samples_folded > 0
    assert coverage(stopped).folded_run_id < stopped.execute("SELECT MAX(id) FROM runs").fetchone()[0]
    second = fold_samples(stopped, NOW, 90)
    assert second.complete
    assert first.samples_folded + second.samples_folded == stopped.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    whole, _ = build(tmp_path / "whole.db")
    fold_samples(whole, NOW, 90)
    assert day_rows(stopped) == day_rows(whole)


def test_runs_numbered_from_one_again_after_retention_deleted_them_all_are_folded(tmp_path: Path) -> None:
    conn, _ = build(tmp_path / "db", hours=2)
    fold_samples(conn, NOW, 90)
    conn.execute("DELETE FROM samples")
    conn.execute("DELETE FROM runs")  # months without a collection: retention deleted every run
    conn.execute("DELETE FROM container_spans")
    conn.execute("DELETE FROM pods")
    history = History(conn)
    app = history.container("shop", "Deployment", "api-0", "app")
    for step in range(3):
        history.add(app, NOW + DAY + step * 300, Sample(cpu_usage_avg_millicores=42))
    assert conn.execute("SELECT MIN(id) FROM runs").fetchone()[0] == 1

    fold_samples(conn, NOW + DAY, 90)

    assert conn.execute("SELECT samples, cpu_usage_sum_millicores FROM daily_rollups WHERE day = ?",
                        (NOW // DAY * DAY + DAY,)).fetchall() == [(3, 126)]


def test_day_rows_past_the_hourly_retention_are_deleted(tmp_path: Path) -> None:
    conn, _ = build(tmp_path / "db")
    fold_samples(conn, NOW, 90)
    days = sorted({row[1] for row in day_rows(conn)})
    result = fold_samples(conn, days[-1] + DAY, 1)  # a day later, keeping one day
    assert result.day_rows_deleted > 0
    assert sorted({row[1] for row in day_rows(conn)}) == days[-1:]


@pytest.mark.parametrize("shift_seconds", [0, 120], ids=["the same seconds", "two minutes later"])
def test_a_second_demo_over_the_same_minutes_counts_in_whole_day_reports(
        tmp_path: Path, cluster, clock, shift_seconds: int, day_rows_only: None) -> None:
    # `make demo` twice: six collections ending at midnight, folded after each, then six more from a
    # start 25 minutes back again (stored later, with earlier times: partly in the day before).
    settings = make_settings(tmp_path, cluster)
    first_start = clock.now - 25 * 60
    for start in (first_start, first_start + shift_seconds):
        for number in range(6):
            clock.now = start + number * 300
            body, status = collect_once(settings, Trigger("cli"), clock=clock)
            assert (status, body["status"]) == (200, "ok")
    conn = connect(settings.database_path, readonly=True)
    week, hours = report(conn, settings, "7d", clock.now), report(conn, settings, "6h", clock.now)
    stored = conn.execute(f"SELECT COUNT(*) FROM {SAMPLES} WHERE cs.phase = 'Running'"
                          " AND s.cpu_usage_avg_millicores IS NOT NULL").fetchone()[0]
    conn.close()

    assert "daily" in sources(week) and sources(hours) == ["raw"]
    assert sum(c["cpu_samples"] for c in week["containers"]) == stored > 0
    for key, row in containers(hours).items():
        got = containers(week)[key]
        for name in ("cpu_samples", "memory_samples", "cpu_usage_avg_millicores", "cpu_idle_millicores",
                     "memory_working_set_max_bytes"):
            assert got[name] == row[name], (key, name)


def expected_figures(conn: sqlite3.Connection, window: str = "3d") -> tuple[dict, int]:
    """The figures of the raw samples of the window, and the seconds its runs cover."""
    w = parse_window(window, NOW, 90)
    return reference_report(conn, w.start, w.end), covered_seconds(conn, w.start, w.end)


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
                                ("memory_working_set_avg_bytes", 0.5), ("memory_idle_bytes", 0.5),
                                ("pods_avg", 0.005)):
            assert row[name] == pytest.approx(want[name], abs=tolerance), (key, name)
        p95 = row["cpu_usage_p95_millicores"]
        reason = row["reasons"]["cpu_usage_p95_millicores"]
        if histogram_percentile:
            assert p95 == pytest.approx(percentile(pack_values(want["cpu_values"]), 95), abs=0.05)
            assert abs(p95 - want["cpu_usage_p95_millicores"]) <= MAX_RELATIVE_ERROR * want["cpu_usage_p95_millicores"]
            assert "from usage histograms, within 4.4%" in reason
        else:
            assert p95 == want["cpu_usage_p95_millicores"]
            assert "histograms" not in reason
    cluster = body["cluster"]
    for name, figure, tolerance in (("cpu_requested_millicores", "cpu_requested_avg_millicores", 0.1),
                                    ("cpu_used_millicores", "cpu_used_avg_millicores", 0.1),
                                    ("memory_requested_bytes", "memory_requested_avg_bytes", 1),
                                    ("memory_used_bytes", "memory_used_avg_bytes", 1)):
        assert cluster[name] == pytest.approx(sum(w[figure] for w in expected.values()), abs=tolerance), name


def test_the_cpu_p95_is_exact_while_every_sample_of_the_window_is_raw(tmp_path: Path) -> None:
    conn, settings = build(tmp_path / "db")
    expected, span = expected_figures(conn)
    fold_samples(conn, NOW, 90)  # as the retention pass after every collection does

    body = report(conn, settings)

    assert sources(body) == ["raw"] and body["window"]["span_seconds"] == span
    assert_matches(body, expected, histogram_percentile=False)


def test_the_report_reads_the_same_numbers_from_raw_samples_and_day_rollups(tmp_path: Path, monkeypatch) -> None:
    conn, settings = build(tmp_path / "db")
    expected, _ = expected_figures(conn)
    raw = report(conn, settings)
    assert sources(raw) == ["raw"]

    fold_samples(conn, NOW, 90)
    monkeypatch.setattr("shared.store.window_usage.RAW_WINDOW_MAX_SAMPLES", 0)
    folded = report(conn, settings)
    assert sources(folded) == ["daily"]
    assert_matches(folded, expected, histogram_percentile=True)
    monkeypatch.undo()

    apply_retention(settings, clock=lambda: NOW)  # raw samples older than a day go; the day rows stay
    assert conn.execute(f"SELECT MIN({SAMPLE_TS}) FROM {SAMPLES}").fetchone()[0] >= NOW - DAY - 3600
    assert containers(report(conn, settings)) == containers(folded)


def test_hourly_rollups_give_the_numbers_of_the_raw_samples(tmp_path: Path, monkeypatch) -> None:
    # Usage of Running pods only, and idle against each sample's request (the request changes
    # at half past an hour), as from raw samples and day rows.
    conn, settings = build(tmp_path / "db")
    expected, _ = expected_figures(conn)
    # out of budget:
    monkeypatch.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult(complete=False))
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


def test_each_run_counts_for_its_own_window_from_every_source(tmp_path: Path, monkeypatch) -> None:
    # Collected every 10 minutes (runs covering 600 s) for 30 hours, then every 5 minutes for 30 hours;
    # COLLECT_INTERVAL_SECONDS is 300 today. Raw samples, hourly and day rollups give the same figures.
    settings = settings_for(tmp_path / "db")
    conn = connect(settings.database_path)
    history = History(conn)
    random_history(history, NOW - 30 * 3600, hours=30, interval_seconds=600)
    random_history(history, NOW, hours=30)
    expected, covered = expected_figures(conn)
    assert covered == 60 * 3600
    raw = report(conn, settings)
    assert sources(raw) == ["raw"] and raw["window"]["span_seconds"] == covered
    assert_matches(raw, expected, histogram_percentile=False)

    monkeypatch.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult(complete=False))
    apply_retention(settings, clock=lambda: NOW)  # hours older than a day: rolled up, raw samples deleted
    monkeypatch.undo()
    rolled = report(conn, settings)
    assert sources(rolled) == ["hourly", "raw"] and rolled["window"]["span_seconds"] == covered
    assert_matches(rolled, expected, histogram_percentile=True)

    fold_samples(conn, NOW, 90)
    monkeypatch.setattr("shared.store.window_usage.RAW_WINDOW_MAX_SAMPLES", 0)
    both = report(conn, settings)
    assert sources(both) == ["hourly", "daily"] and both["window"]["span_seconds"] == covered
    assert_matches(both, expected, histogram_percentile=True)


def test_raw_samples_not_folded_yet_are_kept_until_they_are(tmp_path: Path, monkeypatch) -> None:
    source, _ = build(tmp_path / "source.db")
    expected, _ = expected_figures(source)
    early = NOW - 50 * 3600
    unfolded = source.execute(f"SELECT COUNT(*) FROM {SAMPLES} WHERE {SAMPLE_TS} >= ?", (early,)).fetchone()[0]
    source.close()
    settings = settings_for(tmp_path / "db")
    conn = connect(settings.database_path)
    replay(conn, tmp_path / "source.db", source_runs(tmp_path / "source.db", "started_at < ?", early))
    # the folds stop here (say, every later pass ran out of budget folding)
    replay(conn, tmp_path / "source.db", source_runs(tmp_path / "source.db", "started_at >= ?", early), fold=False)
    monkeypatch.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult(complete=False))
    result = apply_retention(settings, clock=lambda: NOW)
    monkeypatch.undo()
    assert result.hours_rolled_up > 0 and result.samples_deleted > 0  # the folded samples older than a day
    assert conn.execute(f"SELECT COUNT(*) FROM {SAMPLES} WHERE {SAMPLE_TS} >= ?", (early,)).fetchone()[0] == unfolded

    fold_samples(conn, NOW, 90)
    body = report(conn, settings)
    assert sources(body) == ["daily"]
    assert_matches(body, expected, histogram_percentile=True)
    apply_retention(settings, clock=lambda: NOW)
    assert conn.execute(f"SELECT MIN({SAMPLE_TS}) FROM {SAMPLES}").fetchone()[0] >= NOW - DAY - 3600


def test_hourly_and_day_rollups_store_histograms_in_one_format(tmp_path: Path) -> None:
    conn, settings = build(tmp_path / "db")
    apply_retention(settings, clock=lambda: NOW)  # folds everything, then rolls up hours older than a day
    day = NOW // DAY * DAY - 2 * DAY  # the first day: every hour of it rolled up
    rows = conn.execute("SELECT container_id, cpu_usage_histogram FROM daily_rollups WHERE day = ?", (day,)).fetchall()
    assert rows
    for container_id, blob in rows:
        hours = conn.execute("SELECT cpu_usage_histogram FROM hourly_rollups WHERE container_id = ? AND hour >= ?"
                             " AND hour < ?", (container_id, day, day + DAY)).fetchall()
        assert to_blob(sum(from_blob(hour) for hour, in hours)) == blob, container_id


def test_the_report_benchmark_deletes_its_database_unless_asked_to_keep_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(REPO / "benchmarks" / "report.py"), "--containers", "4", "--repeats", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "window 7d (default), limit 100" in done.stdout
    assert list(tmp_path.iterdir()) == []

    kept = subprocess.run([*command, "--keep"], env=env, capture_output=True, text=True, timeout=120)
    path = Path(kept.stdout.splitlines()[-1].removeprefix("kept ").split(" ")[0])
    assert path.is_file() and path.parent.parent == tmp_path


def test_benchmarks_import_nothing_from_tests() -> None:
    for path in (REPO / "benchmarks").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        test_helpers = {p.stem for p in (REPO / "tests").glob("*.py")}
        assert not {m for m in modules if m.split(".")[0] in {"tests", *test_helpers}}, path
        assert '"tests"' not in path.read_text(), path  # nor puts tests/ on sys.path
