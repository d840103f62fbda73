"""A database written before rollups kept the time their runs covered (schema 1) migrates to it, and
reports the same figures as one written by this release."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.core.settings import load_settings
from shared.domain.report.build import build_report
from shared.domain.report.output import report_json
from shared.domain.report.query import parse_report_query
from shared.store import schema
from shared.store.connection import connect, schema_version
from shared.store.daily_rollups import WEIGHTED, FoldResult, fold_samples
from shared.store.retention import apply_retention
from tests.support.release_2 import as_written_by_release_2
from tests.support.report_history import History, random_history

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC
TABLES = ("hourly_rollups", "daily_rollups", "hourly_coverage", "daily_coverage")


def as_written_by_release_1(path: Path) -> None:
    """Remove what migrations 2 onwards add, as the database was before them."""
    as_written_by_release_2(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for name in ("cluster", "warnings", "prometheus_series_returned", "prometheus_response_bytes",
                     "prometheus_samples_processed"):  # migration 3
            conn.execute(f"ALTER TABLE runs DROP COLUMN {name}")
        conn.execute("DROP TABLE hourly_coverage")
        conn.execute("DROP TABLE daily_coverage")
        for name in WEIGHTED:
            conn.execute(f"ALTER TABLE hourly_rollups DROP COLUMN {name}")
            conn.execute(f"ALTER TABLE daily_rollups DROP COLUMN {name}")
            conn.execute(f"ALTER TABLE daily_rollups DROP COLUMN {name}_cumulative")
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()


def contents(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES}


def reports(conn: sqlite3.Connection, settings) -> list[dict]:  # type: ignore[no-untyped-def]
    bodies = []
    for window in ("3d", "6h"):
        body = report_json(build_report(conn, parse_report_query({"window": window, "limit": "all"}, settings, NOW),
                                        settings, NOW))
        bodies.append({k: v for k, v in body.items() if k != "generated_at"})
    return bodies


def test_a_release_1_database_migrates_to_the_rollups_and_times_this_release_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", retention_raw_days=1,
                             retention_hourly_days=90, collect_interval_seconds=300)
    conn = connect(settings.database_path)
    random_history(History(conn), NOW, hours=60)
    with monkeypatch.context() as out_of_budget:  # the hours older than a day are rolled up before any fold
        out_of_budget.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult(complete=False))
        apply_retention(settings, clock=lambda: NOW)
    fold_samples(conn, NOW, 90)  # the day rows hold the rest
    written = contents(conn)
    reported = reports(conn, settings)
    conn.close()
    assert all(written.values())
    assert {piece["source"] for body in reported for piece in body["window"]["sources"]} == {"daily", "hourly", "raw"}
    as_written_by_release_1(settings.database_path)

    conn = connect(settings.database_path)  # this release opens it: migrations 2 onwards run

    assert schema_version(conn) == len(schema.MIGRATIONS)
    assert contents(conn) == written
    assert reports(conn, settings) == reported
    conn.close()
