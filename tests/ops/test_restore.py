"""Restore: a verified backup comes back exactly; anything damaged or foreign is refused untouched."""

from __future__ import annotations

import gzip
import hashlib
import random
import re
import sqlite3
from pathlib import Path

import pytest

from shared.cli import main
from shared.core.locking import try_file_lock
from shared.core.settings import Settings
from shared.ops.backup import run_backup
from shared.ops.restore import RestoreError, restore_backup
from shared.store.connection import SCHEMA_VERSION, connect
from tests.conftest import make_settings
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

TABLES = ("runs", "nodes", "node_samples", "workloads", "containers", "pods", "samples", "hourly_rollups")


def store_history(settings: Settings, runs: int, start: float, generation: int = 0) -> None:
    conn = connect(settings.database_path)
    try:
        rng, inventory = random.Random(start), synthetic_inventory(15, generation=generation)
        for number in range(runs):
            store_synthetic_run(conn, inventory, start + number * 300, rng)
    finally:
        conn.close()


def table_contents(database: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(database)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES}
    finally:
        conn.close()


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file in a directory (but lock files) with the sha256 of its content."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())
            if p.is_file() and p.suffix != ".lock"}


@pytest.fixture
def backed_up(tmp_path, clock) -> tuple[Settings, Path, dict]:
    """A database with history, a backup of it, and what the database held when it was taken."""
    settings = make_settings(tmp_path)
    store_history(settings, runs=6, start=clock.now)
    contents = table_contents(settings.database_path)
    outcome = run_backup(settings, clock)
    return settings, settings.backup_dir / outcome.backup.file, contents


def test_restore_brings_back_exactly_what_was_backed_up(backed_up, clock):
    settings, backup, contents = backed_up
    store_history(settings, runs=4, start=clock.now + 7200, generation=1)  # later changes, to be undone
    conn = connect(settings.database_path)
    conn.execute("DELETE FROM samples WHERE run_id = 1")
    conn.close()
    later = table_contents(settings.database_path)

    result = restore_backup(settings, backup, clock)

    assert table_contents(settings.database_path) == contents
    assert result.runs == 6 and result.schema_version == SCHEMA_VERSION
    assert result.replaced is not None and result.replaced.name.startswith("k8s_metrics.db.replaced-")
    assert table_contents(result.replaced) == later  # the replaced database is kept whole
    conn = connect(settings.database_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_restore_leaves_no_stale_wal_of_the_replaced_database(backed_up, clock):
    settings, backup, contents = backed_up
    writer = connect(settings.database_path)  # leaves a -wal with committed pages behind when it crashes
    store_history(settings, runs=2, start=clock.now + 7200, generation=1)
    writer.close()

    restore_backup(settings, backup, clock)

    siblings = sorted(p.name for p in settings.database_path.parent.iterdir() if not p.name.endswith(".lock"))
    assert [name for name in siblings if name.endswith(("-wal", "-shm", "-journal"))] == []
    assert [name for name in siblings if ".restore-" in name] == []
    assert table_contents(settings.database_path) == contents


def test_restore_into_an_empty_volume_creates_the_database(backed_up, clock, tmp_path):
    settings, backup, contents = backed_up
    fresh = make_settings(tmp_path / "fresh", backup_dir=settings.backup_dir)

    result = restore_backup(fresh, Path(backup.name), clock)  # a bare name is looked up in BACKUP_DIR

    assert result.replaced is None
    assert table_contents(fresh.database_path) == contents


def _sqlite_file(path: Path, statements: list[str]) -> bytes:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path.read_bytes()


def _with_checksum(backup: Path, content: bytes) -> None:
    """Replace a backup's content and its checksum file with it: only the content itself is wrong."""
    backup.write_bytes(content)
    backup.with_name(backup.name + ".sha256").write_text(f"{hashlib.sha256(content).hexdigest()}  {backup.name}\n")


def _damage(kind: str, backup: Path, scratch: Path) -> None:
    original = backup.read_bytes()
    if kind == "bad checksum":
        backup.write_bytes(original[:200] + bytes([original[200] ^ 0xFF]) + original[201:])
    elif kind == "no checksum file":
        backup.with_name(backup.name + ".sha256").unlink()
    elif kind == "not gzip":
        _with_checksum(backup, b"PK\x03\x04 this is a zip file, not a backup" * 100)
    elif kind == "truncated gzip":
        _with_checksum(backup, original[: len(original) // 2])
    elif kind == "gzip of a text file":
        _with_checksum(backup, gzip.compress(b"hello, I am not a database\n" * 1000))
    elif kind == "another application's database":
        _with_checksum(backup, gzip.compress(_sqlite_file(scratch / "other.db", [
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)", "PRAGMA user_version = 1"])))
    elif kind == "newer schema":
        database = scratch / "newer.db"
        database.write_bytes(gzip.decompress(original))
        _with_checksum(backup, gzip.compress(_sqlite_file(database, ["PRAGMA user_version = 99"])))
    elif kind == "damaged pages":
        database = scratch / "damaged.db"
        content = bytearray(gzip.decompress(original))
        page_size = int.from_bytes(content[16:18], "big")
        content[2 * page_size: 4 * page_size] = b"\x07" * (2 * page_size)  # garbage over two b-tree pages
        _with_checksum(backup, gzip.compress(bytes(content)))


REFUSALS = {
    "bad checksum": "damaged or incomplete",
    "no checksum file": "no readable checksum file",
    "not gzip": "not a complete gzip file",
    "truncated gzip": "not a complete gzip file",
    "gzip of a text file": "does not hold a SQLite database",
    "another application's database": "another application",
    "newer schema": "newer k8s-resource-monitor",
    "damaged pages": "damaged database",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_damaged_or_foreign_backup_is_refused_and_the_database_untouched(backed_up, clock, tmp_path, kind):
    settings, backup, contents = backed_up
    store_history(settings, runs=1, start=clock.now + 7200, generation=1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _damage(kind, backup, scratch)
    before = fingerprint(settings.database_path.parent)

    with pytest.raises(RestoreError) as refused:
        restore_backup(settings, backup, clock)

    assert REFUSALS[kind] in str(refused.value)
    assert "the current database was not changed" in str(refused.value)
    assert fingerprint(settings.database_path.parent) == before


def test_restore_is_refused_while_a_collection_runs(backed_up, clock):
    settings, backup, _ = backed_up
    before = fingerprint(settings.database_path.parent)
    with try_file_lock(settings.lock_path), pytest.raises(RestoreError, match="a collection is running"):
        restore_backup(settings, backup, clock)
    assert fingerprint(settings.database_path.parent) == before


def test_restore_is_refused_while_another_process_has_the_database_open(backed_up, clock):
    settings, backup, _ = backed_up
    store_history(settings, runs=1, start=clock.now + 7200, generation=1)
    before = table_contents(settings.database_path)
    reader = connect(settings.database_path, readonly=True)  # as a report or health check has it
    try:
        with pytest.raises(RestoreError, match="in use by another process"):
            restore_backup(settings, backup, clock)
    finally:
        reader.close()
    assert table_contents(settings.database_path) == before


def test_cli_backup_list_and_restore(tmp_path, clock, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    store_history(settings, runs=3, start=clock.now)
    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    monkeypatch.setenv("BACKUP_DIR", str(settings.backup_dir))

    assert main(["backup"]) == 0
    made = capsys.readouterr().out
    assert main(["backups"]) == 0
    listed = capsys.readouterr().out
    name = next(p.name for p in settings.backup_dir.glob("*.db.gz"))
    assert any(line.startswith(f"backup {settings.backup_dir / name}: ") and "sha256 " in line
               for line in made.splitlines())
    assert name in listed and "verified" in listed and re.search(r"  \d+s  ", listed)

    (settings.backup_dir / name).write_bytes(b"garbage")
    assert main(["restore", name]) == 1
    assert "refused: " in capsys.readouterr().err
    assert main(["backups"]) == 0
    assert "DAMAGED" in capsys.readouterr().out
