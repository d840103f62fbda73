"""Upgrades and rollbacks: migrations go forward only, keep a copy of the data they start from, and a
database written by a newer version is refused by an older one instead of being written into."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.store import connection as store
from shared.store import schema
from shared.store.connection import (
    SCHEMA_VERSION,
    DatabaseMissing,
    SchemaTooNew,
    StoreError,
    connect,
    database_uri,
    schema_version,
)
from tests.conftest import FakeClock
from tests.support.servers import function_server

PROBE_MIGRATION = "CREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL);\n"


def collected_database(settings: Settings, clock: FakeClock) -> int:
    """A database at the current schema holding one collection; the number of its sample rows."""
    body, status = collect_once(settings, Trigger("cli"), clock=clock)
    assert (status, body["status"]) == (200, "ok"), body
    return count_rows(settings.database_path, "samples")


def count_rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(database_uri(path, "ro"), uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(database_uri(path, "ro"), uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def pretend_written_by_a_newer_version(path: Path) -> int:
    """Set user_version above what this code knows, as an upgraded image's migration would."""
    newer = SCHEMA_VERSION + 1
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA user_version = {newer}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return newer


@pytest.fixture
def next_migration(monkeypatch: pytest.MonkeyPatch) -> int:
    """A release with one more migration than this one; the schema version it migrates to."""
    migrations = [*schema.MIGRATIONS, PROBE_MIGRATION]
    monkeypatch.setattr(schema, "MIGRATIONS", migrations)
    monkeypatch.setattr(store, "MIGRATIONS", migrations)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(migrations))
    return len(migrations)


def test_a_database_from_a_newer_version_is_refused_with_what_to_do(settings: Settings, clock: FakeClock) -> None:
    collected_database(settings, clock)
    newer = pretend_written_by_a_newer_version(settings.database_path)

    for readonly in (False, True):
        with pytest.raises(SchemaTooNew) as refused:
            connect(settings.database_path, readonly=readonly)
        assert str(refused.value) == (
            f"database {settings.database_path} has schema version {newer}, newer than this version of "
            f"k8s-resource-monitor supports ({SCHEMA_VERSION}); upgrade the image, or restore a backup taken "
            f"before the upgrade")


def test_the_collect_function_answers_a_newer_database_with_the_reason_and_writes_nothing(
        settings: Settings, clock: FakeClock) -> None:
    samples = collected_database(settings, clock)
    newer = pretend_written_by_a_newer_version(settings.database_path)
    before = hashlib.sha256(settings.database_path.read_bytes()).hexdigest()
    env = {"DATABASE_PATH": str(settings.database_path), "KUBECONFIG": str(settings.kubeconfig),
           "PROMETHEUS_URL": settings.prometheus_url, "LOG_FORMAT": "json", "NAMESPACES_INCLUDE": ""}

    with function_server("collect", env) as url:
        plain = requests.post(url, json={}, timeout=30, headers={"Connection": "close"})
        event = requests.post(url, data="{}", timeout=30, headers={
            "Connection": "close", "Content-Type": "application/json", "Ce-Specversion": "1.0",
            "Ce-Type": "dev.knative.sources.ping", "Ce-Id": "tick-1",
            "Ce-Source": "/apis/v1/namespaces/monitoring/pingsources/collect-schedule"})

    for answer in (plain, event):
        assert answer.status_code == 500  # PingSource does not retry a 500: a retry would be refused too
        assert answer.json()["error"].startswith("database ")  # the message itself, not "internal error"
        assert (f"has schema version {newer}, newer than this version of k8s-resource-monitor supports "
                f"({SCHEMA_VERSION}); upgrade the image, or restore a backup") in answer.json()["error"]
    assert hashlib.sha256(settings.database_path.read_bytes()).hexdigest() == before
    assert count_rows(settings.database_path, "runs") == 1
    assert count_rows(settings.database_path, "processed_events") == 0
    assert count_rows(settings.database_path, "samples") == samples


def test_a_migration_keeps_a_copy_of_the_data_it_started_from(
        settings: Settings, clock: FakeClock, next_migration: int, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.MonkeyPatch.context() as release_before:  # the data is written by the current release
        release_before.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION)
        release_before.setattr(store, "MIGRATIONS", schema.MIGRATIONS[:SCHEMA_VERSION])
        samples = collected_database(settings, clock)
    database = settings.database_path

    with caplog.at_level(logging.WARNING, logger="shared.store.connection"):
        conn = connect(database)  # the upgraded release opens it
    conn.close()

    copies = list(database.parent.glob(f"{database.name}.pre-migration-v{SCHEMA_VERSION}-*.db"))
    assert len(copies) == 1, sorted(p.name for p in database.parent.iterdir())
    copy = copies[0]
    stamp = copy.name.removesuffix(".db").rsplit("-", 1)[1]
    taken = datetime.strptime(stamp, "%Y%m%d_%H%M%S").replace(tzinfo=UTC).timestamp()
    assert abs(taken - datetime.now(UTC).timestamp()) < 300
    assert not list(database.parent.glob(f"{copy.name}-wal"))  # self-contained: no WAL beside it
    assert (count_rows(copy, "samples"), count_rows(copy, "runs")) == (samples, 1)
    assert "upgrade_probe" not in tables(copy)
    assert "upgrade_probe" in tables(database)
    with sqlite3.connect(copy) as old, sqlite3.connect(database) as new:
        assert (schema_version(old), schema_version(new)) == (SCHEMA_VERSION, next_migration)
        assert old.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert f"copied to {copy} before migrating to version {next_migration}" in caplog.text


def test_after_a_rollback_the_old_release_refuses_the_migrated_file_and_reads_the_copy(
        settings: Settings, clock: FakeClock) -> None:
    samples = collected_database(settings, clock)
    database = settings.database_path
    with pytest.MonkeyPatch.context() as upgraded:
        migrations = [*schema.MIGRATIONS, PROBE_MIGRATION]
        upgraded.setattr(store, "MIGRATIONS", migrations)
        upgraded.setattr(store, "SCHEMA_VERSION", len(migrations))
        connect(database).close()
    (copy,) = database.parent.glob(f"{database.name}.pre-migration-*.db")

    with pytest.raises(SchemaTooNew, match="upgrade the image, or restore a backup taken before the upgrade"):
        connect(database)
    conn = connect(copy)
    try:
        assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == samples
    finally:
        conn.close()


def test_a_new_database_is_created_without_a_copy(tmp_path: Path) -> None:
    connect(tmp_path / "fresh.db").close()

    assert sorted(p.name for p in tmp_path.iterdir() if "pre-migration" in p.name) == []


def test_a_migration_without_its_copy_does_not_run(
        settings: Settings, clock: FakeClock, next_migration: int) -> None:
    with pytest.MonkeyPatch.context() as release_before:
        release_before.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION)
        collected_database(settings, clock)
    database = settings.database_path
    at = datetime(2024, 1, 15, 10, 30, tzinfo=UTC).timestamp()
    blocked = database.with_name(f"{database.name}.pre-migration-v{SCHEMA_VERSION}-20240115_103000.db")
    blocked.mkdir()  # the copy cannot take its name

    conn = sqlite3.connect(database, isolation_level=None)
    try:
        with pytest.raises(StoreError, match="the copy kept before migrating could not be written beside it"):
            store.migrate_schema(conn, SCHEMA_VERSION, clock=lambda: at)
        assert schema_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()
    assert "upgrade_probe" not in tables(database)
    assert [p.name for p in database.parent.iterdir() if p.name.endswith(".partial")] == []


def test_migrate_command_brings_an_old_database_to_the_current_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.cli import main

    database = tmp_path / "k8s_metrics.db"
    connect(database).close()  # written by this release
    monkeypatch.setenv("DATABASE_PATH", str(database))
    newer = [*schema.MIGRATIONS, PROBE_MIGRATION]  # the next release adds a migration
    monkeypatch.setattr(store, "MIGRATIONS", newer)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(newer))
    assert main(["migrate"]) == 0
    assert f"schema version {len(newer)} (current {len(newer)})" in capsys.readouterr().out


ODD_NAMES = ["k8s metrics?mode=rw.db", "k8s#metrics.db", "k8s%3Fmetrics%20.db", "a?b#c%41 d.db"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_database_path_with_uri_characters_opens_that_very_file(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "data ?#%25"
    database = folder / name
    conn = connect(database)
    conn.execute("INSERT INTO nodes (name) VALUES ('node-1')")
    conn.close()
    assert database.is_file()

    reader = connect(database, readonly=True)
    try:
        assert reader.execute("SELECT name FROM nodes").fetchall() == [("node-1",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO nodes (name) VALUES ('node-2')")
    finally:
        reader.close()
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [name]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_database_path_with_uri_characters_that_does_not_exist_is_named_when_read(tmp_path: Path, name: str) -> None:
    database = tmp_path / name
    with pytest.raises(DatabaseMissing) as missing:
        connect(database, readonly=True)
    assert str(missing.value) == f"database {database} does not exist yet (DATABASE_PATH); run a collection first"
    assert list(tmp_path.iterdir()) == []


def test_a_database_path_with_uri_characters_is_copied_before_a_migration(
        tmp_path: Path, next_migration: int) -> None:
    database = tmp_path / "odd ?#% dir" / "k8s?metrics#1%20.db"
    with pytest.MonkeyPatch.context() as release_before:
        release_before.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION)
        release_before.setattr(store, "MIGRATIONS", schema.MIGRATIONS[:SCHEMA_VERSION])
        conn = connect(database)
        conn.execute("INSERT INTO nodes (name) VALUES ('node-1')")
        conn.close()

    connect(database).close()  # the upgraded release migrates it

    [copy] = database.parent.glob(f"{glob_escape(database.name)}.pre-migration-v{SCHEMA_VERSION}-*.db")
    assert count_rows(copy, "nodes") == 1
    assert "upgrade_probe" in tables(database) and "upgrade_probe" not in tables(copy)


def glob_escape(name: str) -> str:
    import glob
    return glob.escape(name)
