"""Schema 3 moves release 2's samples into container spans and lean samples: in batches, resumable,
after a copy of the file, with every sample, report and alert the same as before."""

from __future__ import annotations

import gzip
import hashlib
import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from msgspec import structs

from shared.core.settings import Settings, load_settings
from shared.domain.alerts.evaluation import evaluate_rules
from shared.domain.report.build import build_report
from shared.domain.report.output import report_json
from shared.domain.report.query import parse_report_query
from shared.ops.restore import restore_backup
from shared.store import connection as store
from shared.store import retention, sample_migration, schema
from shared.store.connection import SCHEMA_VERSION, connect, schema_version
from shared.store.daily_rollups import FoldResult, fold_samples
from shared.store.retention import apply_retention
from shared.store.runs import RunRecord, store_collection
from shared.store.sample_migration import move_samples
from tests.support.release_2 import SPANS_MIGRATION, as_written_by_release_2, sample_rows
from tests.support.report_history import History, random_history
from tests.support.synthetic_history import synthetic_inventory, synthetic_usage

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC


def settings_for(path: Path) -> Settings:
    return load_settings(database_path=path, retention_raw_days=1, retention_hourly_days=90,
                         collect_interval_seconds=300, report_window_days=3, backup_dir=path.parent / "backups")


def history(settings: Settings) -> None:
    """60 hours of report history (request changes, Pending and Succeeded pods, OOM kills), rolled up
    past a day, then folded into day rows, and a day of collections of a cluster whose pods are
    replaced, resized and restarted."""
    conn = connect(settings.database_path)
    random_history(History(conn), NOW - 86_400, hours=60)
    rng = random.Random(7)
    for number in range(288):
        at = NOW - 86_400 + 300 + number * 300
        inventory = synthetic_inventory(12, generation=number // 100)
        for index, pod in enumerate(inventory.pods):
            if index % 4 == 0 and number % 50 > 40:
                pod.containers[0] = structs.replace(pod.containers[0], cpu_request_millicores=999)  # resized in place
            if index % 5 == 0:  # restarted every 20 runs, the last time in the newest run
                pod.containers[0] = structs.replace(pod.containers[0], restart_count=(number + 13) // 20,
                                            last_termination_reason="OOMKilled" if index % 10 else "Error")
            if index == 1 and number % 100 < 3:
                pod.phase = "Pending"
        run = RunRecord("schedule", at, at + 1, "ok", pods=len(inventory.pods), window_seconds=300)
        store_collection(conn, run, inventory, synthetic_usage(inventory, rng))
    with pytest.MonkeyPatch.context() as no_fold:  # hours rolled up before the first fold: read from hourly rows
        no_fold.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult(complete=False))
        apply_retention(settings, clock=lambda: NOW)
    fold_samples(conn, NOW, 90)
    conn.close()


def everything_read(settings: Settings) -> dict:
    """What users see: reports over windows read from every source, the alert rules, and every sample."""
    conn = connect(settings.database_path)
    try:
        reports = {}
        for window in ("3d", "2d", "6h", "90m"):
            query = parse_report_query({"window": window, "limit": "all"}, settings, NOW)
            body = report_json(build_report(conn, query, settings, NOW))
            reports[window] = {k: v for k, v in body.items() if k != "generated_at"}
        for namespace in ("shop", "team-1"):
            query = parse_report_query({"window": "2d", "namespace": namespace, "limit": "all"}, settings, NOW)
            reports[namespace] = report_json(build_report(conn, query, settings, NOW))["containers"]
        evaluation = evaluate_rules(conn, settings, NOW)
        alerts = {name: sorted((a.labels["container"], a.description) for a in found) if found is not None else None
                  for name, found in evaluation.alerts.items() if name not in ("DatabaseLarge", "BackupMissing")}
        return {"reports": reports, "alerts": alerts, "samples": sample_rows(conn)}
    finally:
        conn.close()


@pytest.fixture
def release_2_database(tmp_path: Path) -> tuple[Settings, dict]:
    """A database release 2 wrote, with real history; what this release read from the same history."""
    settings = settings_for(tmp_path / "k8s_metrics.db")
    history(settings)
    seen = everything_read(settings)
    assert {piece["source"] for body in seen["reports"].values() if isinstance(body, dict)
            for piece in body["window"]["sources"]} == {"raw", "hourly", "daily"}
    assert seen["alerts"]["ContainerOOMKilled"] and seen["alerts"]["ContainerRestarting"]
    assert as_written_by_release_2(settings.database_path) == seen["samples"]
    return settings, seen


def migrating_with(monkeypatch: pytest.MonkeyPatch, step: Callable[[sqlite3.Connection], bool]) -> None:
    """Migration 4 moves its batches with `step` (which wraps the real one)."""
    migrations = list(schema.MIGRATIONS)
    migrations[SPANS_MIGRATION] = replace(migrations[SPANS_MIGRATION], step=step)  # type: ignore[type-var]
    monkeypatch.setattr(store, "MIGRATIONS", migrations)


def spans_per_container(conn: sqlite3.Connection) -> list[tuple]:
    """Each pod's container's spans in order: first and last run, and what they hold."""
    return conn.execute("SELECT pod_id, container_id, first_run_id, last_run_id, phase, cpu_request_millicores,"
                        " cpu_limit_millicores, memory_request_bytes, memory_limit_bytes FROM container_spans"
                        " ORDER BY pod_id, container_id, first_run_id").fetchall()


def test_a_release_2_database_migrates_in_batches_and_reads_the_same(
        release_2_database: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, seen = release_2_database
    monkeypatch.setattr(sample_migration, "BATCH_ROWS", 500)
    database = settings.database_path

    with caplog.at_level(logging.WARNING, logger="shared.store.connection"):
        conn = connect(database)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    spans = spans_per_container(conn)
    conn.close()

    assert schema_version(sqlite3.connect(database)) == SCHEMA_VERSION
    migrated = f"database migrated to schema version {SPANS_MIGRATION + 1}: "
    batches = int(caplog.text.split(migrated)[1].split(" batches")[0])
    assert batches >= len(seen["samples"]) // 600  # no transaction moved more than a batch's runs
    assert {"pods_last_seen", "span_samples"}.isdisjoint(tables) and "samples_v2" in tables  # left to retention
    assert everything_read(settings) == seen
    for before, after in zip(spans, spans[1:]):  # a pod's container's spans follow each other, each a change
        if before[:2] == after[:2]:
            assert before[3] < after[2] and before[4:] != after[4:]
    (copy,) = database.parent.glob(f"{database.name}.pre-migration-v{SPANS_MIGRATION}-*.db")
    with sqlite3.connect(copy) as old:
        assert schema_version(old) == SPANS_MIGRATION
        assert old.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == len(seen["samples"])


def test_a_migration_killed_half_way_goes_on_where_it_stopped(
        release_2_database: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, seen = release_2_database
    monkeypatch.setattr(sample_migration, "BATCH_ROWS", 500)
    batches: list[bool] = []

    def killed_after_three(conn: sqlite3.Connection) -> bool:
        if len(batches) == 3:
            raise KeyboardInterrupt  # the process dies inside the fourth batch's transaction
        batches.append(move_samples(conn))
        return batches[-1]

    migrating_with(monkeypatch, killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        connect(settings.database_path)
    half = sqlite3.connect(settings.database_path)
    moved = half.execute("SELECT COUNT(*) FROM span_samples").fetchone()[0]
    assert schema_version(half) == SPANS_MIGRATION and 0 < moved < len(seen["samples"])
    assert half.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == len(seen["samples"])  # all still there
    half.close()
    monkeypatch.undo()
    monkeypatch.setattr(sample_migration, "BATCH_ROWS", 500)

    connect(settings.database_path).close()  # the next start goes on

    assert everything_read(settings) == seen


def test_runs_a_release_2_process_stores_meanwhile_are_moved_too(
        release_2_database: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, seen = release_2_database
    monkeypatch.setattr(sample_migration, "BATCH_ROWS", 500)
    late_run: list[int] = []

    def with_a_collection_of_release_2(conn: sqlite3.Connection) -> bool:
        if move_samples(conn):
            return True
        if not late_run:  # after the last batch, a release 2 collection commits a run, as release 2 stores it
            at = NOW + 60
            late_run.append(conn.execute("INSERT INTO runs (trigger, started_at, finished_at, status, window_seconds)"
                                         " VALUES ('schedule', ?, ?, 'ok', 300)", (at, at + 1)).lastrowid)
            conn.execute("INSERT INTO samples SELECT ?, container_id, pod_id, ?, phase, cpu_request_millicores,"
                         " cpu_limit_millicores, memory_request_bytes, memory_limit_bytes, 7, 8, 9, 10, 0.5, 11,"
                         " NULL, 0 FROM samples WHERE run_id = (SELECT MAX(run_id) FROM samples)",
                         (late_run[0], int(at)))
        return False

    migrating_with(monkeypatch, with_a_collection_of_release_2)
    connect(settings.database_path).close()

    conn = connect(settings.database_path)
    late = conn.execute("SELECT COUNT(*), SUM(cpu_usage_avg_millicores) FROM samples WHERE run_id = ?",
                        late_run).fetchone()
    before = [row for row in sample_rows(conn) if row[0] != late_run[0]]
    conn.close()
    newest = [row for row in seen["samples"] if row[0] == max(r[0] for r in seen["samples"])]
    assert late == (len(newest), 7 * len(newest))
    assert before == seen["samples"]


def test_a_backup_release_2_took_is_restored_and_migrated(release_2_database: tuple[Settings, dict]) -> None:
    settings, seen = release_2_database
    settings.backup_dir.mkdir()
    backup = settings.backup_dir / "k8s_metrics_20260110_020000.db.gz"
    backup.write_bytes(gzip.compress(settings.database_path.read_bytes()))
    backup.with_name(backup.name + ".sha256").write_text(f"{hashlib.sha256(backup.read_bytes()).hexdigest()}  "
                                                         f"{backup.name}\n")
    settings.database_path.unlink()  # a new volume

    result = restore_backup(settings, backup, clock=lambda: NOW)

    assert result.schema_version == SCHEMA_VERSION
    assert everything_read(settings) == seen


def test_retention_deletes_the_moved_samples_in_batches_before_what_they_refer_to(
        release_2_database: tuple[Settings, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, seen = release_2_database
    connect(settings.database_path).close()
    later = NOW + 8 * 86_400  # the runs of every moved sample are past RETENTION_HOURLY_DAYS (set to 1 here)
    short = settings.model_copy(update={"retention_hourly_days": 1})
    delete = retention._Pass._delete

    def out_of_time_after_a_batch_of_them(self: retention._Pass, statements: tuple[str, str], before: int) -> int:
        if statements is not retention._MOVED_SAMPLES:
            return delete(self, statements, before)
        with self.pacer.write(self.conn):
            self.result.complete = False
            return self.conn.execute(statements[1], {"rows": 1000}).rowcount

    monkeypatch.setattr(retention._Pass, "_delete", out_of_time_after_a_batch_of_them)
    first = apply_retention(short, clock=lambda: later)

    conn = sqlite3.connect(settings.database_path)
    left = conn.execute("SELECT COUNT(*) FROM samples_v2").fetchone()[0]
    assert 0 < left < len(seen["samples"]) and not first.complete
    assert first.runs_deleted == first.pods_deleted == first.containers_deleted == 0  # still referred to
    monkeypatch.undo()

    second = apply_retention(short, clock=lambda: later)

    assert second.complete and second.runs_deleted > 0 and second.pods_deleted > 0
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE tbl_name = 'samples_v2'").fetchone()
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
