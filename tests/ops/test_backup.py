"""Backups: consistent under a writer, verified, 0600, never half-written under a final name, pruned by age."""

from __future__ import annotations

import errno
import gzip
import os
import random
import re
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.core.locking import try_file_lock
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.backup import backup_once
from shared.ops import backup as backup_module
from shared.ops.backup import BackupInfo, last_backup, list_backups, prune_backups, run_backup, verify_checksum
from shared.ops.restore import restore_backup
from shared.store.connection import connect
from tests.conftest import make_settings
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

REPO = Path(__file__).resolve().parents[2]
DAY = 86_400
FINAL_NAME = re.compile(r"^k8s_metrics_\d{8}_\d{6}\.db\.gz$")


def store_history(settings: Settings, runs: int, start: float, pods: int = 20) -> None:
    conn = connect(settings.database_path)
    try:
        rng, inventory = random.Random(runs), synthetic_inventory(pods)
        for number in range(runs):
            store_synthetic_run(conn, inventory, start + number * 300, rng)
    finally:
        conn.close()


def backup_files(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.backup_dir.iterdir() if FINAL_NAME.match(path.name))


def leftovers(settings: Settings) -> list[str]:
    """Files in BACKUP_DIR that are neither a backup, its checksum, nor the lock."""
    return sorted(p.name for p in settings.backup_dir.iterdir()
                  if not FINAL_NAME.match(p.name.removesuffix(".sha256")) and p.name != ".backup.lock")


def test_backup_is_a_compressed_verified_copy_readable_only_by_its_owner(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=5, start=clock.now)

    outcome = run_backup(settings, clock)

    assert outcome.status == "ok"
    path = settings.backup_dir / outcome.backup.file
    assert outcome.backup.file == time.strftime("k8s_metrics_%Y%m%d_%H%M%S.db.gz", time.gmtime(clock.now))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((settings.backup_dir / (path.name + ".sha256")).stat().st_mode) == 0o600
    checked = subprocess.run(["sha256sum", "-c", path.name + ".sha256"], cwd=settings.backup_dir,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert outcome.backup.size_bytes == path.stat().st_size
    unpacked = tmp_path / "unpacked.db"
    unpacked.write_bytes(gzip.decompress(path.read_bytes()))
    copy = sqlite3.connect(unpacked)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT COUNT(*) FROM runs").fetchone() == (5,)
    copy.close()
    assert leftovers(settings) == []


@pytest.mark.parametrize("folder", ["with space", "hash#mark", "question?mark", "per%41cent"])
def test_a_database_and_backup_dir_whose_paths_hold_uri_characters_are_backed_up_whole(tmp_path, clock, folder):
    settings = make_settings(tmp_path, database_path=tmp_path / folder / "k8s_metrics.db",
                             backup_dir=tmp_path / f"backups {folder}")
    store_history(settings, runs=3, start=clock.now)

    outcome = run_backup(settings, clock)

    assert outcome.status == "ok", outcome.error
    unpacked = tmp_path / "unpacked.db"
    unpacked.write_bytes(gzip.decompress((settings.backup_dir / outcome.backup.file).read_bytes()))
    copy = sqlite3.connect(unpacked)
    try:
        assert copy.execute("SELECT COUNT(*) FROM runs").fetchone() == (3,)
    finally:
        copy.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [folder, f"backups {folder}", "unpacked.db"])  # no stray database where the path was cut


def test_last_backup_reports_the_newest_successful_backup(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=2, start=clock.now)
    conn = connect(settings.database_path)
    assert last_backup(conn) is None
    first = run_backup(settings, clock).backup
    clock.advance(3600)
    second = run_backup(settings, clock).backup

    info = last_backup(conn)
    conn.close()

    assert first is not None and second is not None
    assert isinstance(info, BackupInfo)
    assert (info.file, info.size_bytes, info.sha256, info.finished_at) == (
        second.file, second.size_bytes, second.sha256, clock.now)


def test_backup_while_a_writer_keeps_collecting_restores_to_complete_runs(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=3, start=clock.now - 3000)
    stop = threading.Event()
    written: list[int] = []

    def collect_forever() -> None:
        conn = connect(settings.database_path)
        rng, at = random.Random(1), clock.now
        try:
            while not stop.is_set():
                inventory = synthetic_inventory(60, generation=len(written) // 5)
                written.append(store_synthetic_run(conn, inventory, at, rng))
                at += 300
        finally:
            conn.close()

    writer = threading.Thread(target=collect_forever)
    writer.start()
    try:
        outcomes = []
        while len(outcomes) < 3 or len(written) < 10:
            outcomes.append(run_backup(settings, clock))
            clock.advance(1)
        outcomes.append(run_backup(settings, clock))  # taken after at least 10 runs were committed
    finally:
        stop.set()
        writer.join()
    assert [o.status for o in outcomes] == ["ok"] * len(outcomes)

    restore_backup(settings, settings.backup_dir / outcomes[-1].backup.file)

    conn = connect(settings.database_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        incomplete = conn.execute(
            "SELECT r.id FROM runs r WHERE r.containers != (SELECT COUNT(*) FROM samples s WHERE s.run_id = r.id)"
            " OR r.nodes != (SELECT COUNT(*) FROM node_samples n WHERE n.run_id = r.id)"
        ).fetchall()
        restored_runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()
    assert incomplete == []
    assert 3 + 10 <= restored_runs <= 3 + len(written)


_KILLED_MID_WRITE = """
import sys, threading
from pathlib import Path
from shared.ops import backup
from shared.core.settings import load_settings

write = backup._HashingWriter.write

def write_then_hang(self, data):
    written = write(self, data)
    print("writing", flush=True)
    threading.Event().wait()  # until killed
    return written

backup._HashingWriter.write = write_then_hang
backup.run_backup(load_settings(database_path=Path(sys.argv[1]), backup_dir=Path(sys.argv[2])))
"""


def test_backup_killed_mid_write_leaves_no_valid_looking_file_and_the_next_cleans_up(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=3, start=clock.now)
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(settings.database_path), str(settings.backup_dir)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        said, _, _ = select.select([process.stdout], [], [], 30)  # the line, or end of output if it exits first
        assert said and process.stdout.readline() == "writing\n", "the backup process never started writing"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()

    assert process.returncode == -signal.SIGKILL
    assert backup_files(settings) == []
    assert not list(settings.backup_dir.glob("k8s_metrics_*"))  # not even a checksum file
    assert leftovers(settings) != []  # the hidden temporary files of the killed backup

    assert run_backup(settings, clock).status == "ok"
    assert leftovers(settings) == []
    assert len(backup_files(settings)) == 1


def test_an_error_mid_write_removes_every_file_of_that_backup(tmp_path, clock, monkeypatch):
    settings = make_settings(tmp_path)
    store_history(settings, runs=3, start=clock.now)

    def fail(self, data):
        raise RuntimeError("injected failure mid-write")

    monkeypatch.setattr(backup_module._HashingWriter, "write", fail)
    with pytest.raises(RuntimeError, match="injected"):
        run_backup(settings, clock)

    assert list(settings.backup_dir.iterdir()) == [settings.backup_dir / ".backup.lock"]


def _inject_no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    write = backup_module._HashingWriter.write

    def write_until_full(self, data):
        if self.size_bytes > 1000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, data)

    monkeypatch.setattr(backup_module._HashingWriter, "write", write_until_full)


def test_full_disk_fails_clearly_and_keeps_every_older_backup(tmp_path, clock, monkeypatch):
    settings = make_settings(tmp_path, backup_retention_days=2)
    store_history(settings, runs=300, start=clock.now)
    for _ in range(3):
        assert run_backup(settings, clock).status == "ok"
        clock.advance(DAY)
    older = backup_files(settings)
    clock.advance(30 * DAY)  # every older backup is past its retention
    _inject_no_space(monkeypatch)

    body, status = backup_once(settings, Trigger("cli"), clock)

    assert status == 500
    assert body["status"] == "failed"
    assert "no space left in" in body["error"] and "older backups were kept" in body["error"]
    assert backup_files(settings) == older
    assert leftovers(settings) == []
    conn = connect(settings.database_path)
    status_and_error = conn.execute("SELECT status, error FROM backups ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    assert status_and_error[0] == "failed" and "no space left" in status_and_error[1]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (needs root and permission to mount), unmounted afterwards."""
    mountpoint = tmp_path / "tmpfs"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mountpoint)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_really_full_backup_volume_fails_clearly_and_keeps_the_older_backup(tmp_path, clock, small_tmpfs):
    settings = make_settings(tmp_path, backup_dir=small_tmpfs / "backups")
    store_history(settings, runs=3, start=clock.now)
    assert run_backup(settings, clock).status == "ok"
    older = backup_files(settings)
    store_history(settings, runs=450, start=clock.now + 3600, pods=40)  # now bigger than the volume
    assert settings.database_path.stat().st_size > 1024 * 1024
    clock.advance(DAY)

    outcome = run_backup(settings, clock)

    assert outcome.status == "failed"
    assert "no space left in" in outcome.error
    assert backup_files(settings) == older
    assert verify_checksum(settings.backup_dir / older[0]) == "ok"
    assert leftovers(settings) == []


def test_retention_removes_exactly_the_backups_older_than_the_retention_days(tmp_path, clock):
    settings = make_settings(tmp_path, backup_retention_days=4)
    store_history(settings, runs=2, start=clock.now)
    names, removed = [], []
    for _ in range(6):  # days 0 to 5: day 0 is removed by day 5's backup, day 1 (exactly 4 days old) kept
        outcome = run_backup(settings, clock)
        names.append(outcome.backup.file)
        removed += outcome.removed
        clock.advance(DAY)
    clock.advance(-DAY + 3600)  # day 5 plus an hour: now day 1 is more than 4 days old too

    outcome = run_backup(settings, clock)

    assert removed + outcome.removed == names[:2]
    assert backup_files(settings) == sorted(names[2:] + [outcome.backup.file])
    assert not (settings.backup_dir / (names[0] + ".sha256")).exists()
    assert not (settings.backup_dir / (names[1] + ".sha256")).exists()


def test_retention_keeps_the_newest_backup_whose_checksum_verifies_however_old(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=2, start=clock.now)
    good = run_backup(settings, clock).backup.file
    clock.advance(DAY)
    damaged = run_backup(settings, clock).backup.file
    with open(settings.backup_dir / damaged, "r+b") as file:
        file.seek(100)
        file.write(b"\xff\xfe")

    removed = prune_backups(settings.backup_dir, retention_days=7, now=clock.now + 60 * DAY)

    assert removed == [damaged]
    assert backup_files(settings) == [good]


def test_listing_shows_each_backups_checksum_state(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=2, start=clock.now)
    names = []
    for _ in range(3):
        names.append(run_backup(settings, clock).backup.file)
        clock.advance(60)
    (settings.backup_dir / (names[0] + ".sha256")).unlink()
    (settings.backup_dir / names[1]).write_bytes(b"not the backup any more")

    listed = {backup.name: backup.checksum for backup in list_backups(settings.backup_dir)}

    assert listed == {names[0]: "missing", names[1]: "mismatch", names[2]: "ok"}
    assert [b.name for b in list_backups(settings.backup_dir)] == names[::-1]


def test_two_backups_in_one_second_get_distinct_names(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=2, start=clock.now)

    first, second = run_backup(settings, clock).backup, run_backup(settings, clock).backup

    assert first.file != second.file
    assert [verify_checksum(settings.backup_dir / name) for name in backup_files(settings)] == ["ok", "ok"]


def test_a_backup_while_another_runs_is_skipped(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=2, start=clock.now)
    settings.backup_dir.mkdir()
    with try_file_lock(settings.backup_dir / ".backup.lock"):
        body, status = backup_once(settings, Trigger("cli"), clock)
    assert (status, body["status"]) == (200, "skipped")
    assert backup_files(settings) == []


def test_backing_up_a_database_that_does_not_exist_says_so(tmp_path, clock):
    settings = make_settings(tmp_path)

    body, status = backup_once(settings, Trigger("cli"), clock)

    assert status == 500
    assert "does not exist" in body["error"] and "DATABASE_PATH" in body["error"]
    assert not settings.database_path.exists()


def test_a_damaged_database_is_not_backed_up_and_older_backups_stay(tmp_path, clock):
    settings = make_settings(tmp_path)
    store_history(settings, runs=200, start=clock.now)
    older = run_backup(settings, clock).backup.file
    clock.advance(30 * DAY)
    conn = connect(settings.database_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(settings.database_path, "r+b") as file:  # overwrite pages in the middle of the file
        file.seek(settings.database_path.stat().st_size // 2)
        file.write(os.urandom(16384))

    outcome = run_backup(settings, clock)

    assert outcome.status == "failed"
    assert "damaged" in outcome.error and "k8s-monitor restore" in outcome.error
    assert backup_files(settings) == [older]
    assert leftovers(settings) == []
