"""Online backups of the database, and pruning of old ones.

A backup is a consistent copy taken with SQLite's online backup API while collections go on writing
(in WAL mode the copy reads one snapshot and blocks no writer), checked with `integrity_check`,
gzip-compressed and checksummed. A file with a final name, `k8s_metrics_YYYYmmdd_HHMMSS.db.gz`
(UTC) in BACKUP_DIR, is always complete and verified: everything is written under hidden
temporary names (`.k8s_metrics_*`), fsynced, and renamed only at the end, the `.sha256` sidecar
(sha256sum format) first, so a final-named backup always has its checksum beside it. A backup
killed half way leaves only temporary files, which the next backup removes.

On PostgreSQL (DATABASE_URL postgresql://...) the backup is a `pg_dump` custom-format archive,
compressed by pg_dump and checked with `pg_restore --list` (shared/ops/postgres_dump.py), written as
`k8s_metrics_YYYYmmdd_HHMMSS.pgdump` under the same rules: hidden temporary name, sidecar, rename.
A dump holds every cluster's schema, so its attempt is recorded in each cluster's `backups` table.

Backups older than BACKUP_RETENTION_DAYS are then deleted, except the newest one of each kind
(SQLite, PostgreSQL) whose checksum verifies, whatever its age. A failed backup deletes nothing, so
the older ones stay.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from shared.core.database_url import PostgresTarget
from shared.core.formats import file_stamp, parse_file_stamp
from shared.core.locking import try_file_lock
from shared.core.settings import Settings
from shared.core.timeutil import DAY_SECONDS
from shared.ops.postgres_dump import PostgresToolError, dump_database, read_dump
from shared.store.connection import BUSY_TIMEOUT_MS, StoreError, open_store, store_clusters, transaction
from shared.store.dialect import Connection

log = logging.getLogger(__name__)

NAME_PREFIX = "k8s_metrics_"
NAME_SUFFIX = ".db.gz"
DUMP_SUFFIX = ".pgdump"
KINDS = {NAME_SUFFIX: "sqlite", DUMP_SUFFIX: "postgresql"}  # a backup's kind, by its name's suffix
CHECKSUM_SUFFIX = ".sha256"
LOCK_NAME = ".backup.lock"
COMPRESS_LEVEL = 6
CHUNK_BYTES = 1024 * 1024
_NAME = re.compile(r"^k8s_metrics_(\d{8}_\d{6})(\.db\.gz|\.pgdump)$")
_SIDECAR_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_DAMAGED_ADVICE = "older backups were kept; restore the newest good one with `k8s-monitor restore`"


class BackupError(Exception):
    """A backup could not be made; `retriable` when trying again soon may succeed."""

    def __init__(self, message: str, retriable: bool = False):
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class BackupInfo:
    """A successful backup as recorded in the `backups` table."""

    file: str
    size_bytes: int
    sha256: str
    started_at: float
    finished_at: float

    @property
    def duration_seconds(self) -> float:
        """How long the backup took, in seconds."""
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class BackupFile:
    """A backup found in BACKUP_DIR. `checksum`: ok, mismatch, missing (no sidecar) or unchecked."""

    path: Path
    created_at: float
    size_bytes: int
    checksum: str = "unchecked"

    @property
    def name(self) -> str:
        """The backup's file name, which carries its creation time."""
        return self.path.name

    @property
    def kind(self) -> str:
        """`sqlite` (a gzipped database file) or `postgresql` (a pg_dump archive)."""
        return backup_kind(self.name)


@dataclass
class BackupOutcome:
    """What a backup request did: `ok`, `skipped` (another backup was running) or `failed`."""

    status: str
    backup: BackupInfo | None = None
    removed: list[str] = field(default_factory=list)
    error: str | None = None
    retriable: bool = False


def backup_name(at: float, suffix: str = NAME_SUFFIX) -> str:
    """The file name of a backup taken at `at` (Unix seconds), its UTC time in the name so names sort by age."""
    return f"{NAME_PREFIX}{file_stamp(at)}{suffix}"


def backup_kind(name: str) -> str:
    """The kind of the backup named `name`: `sqlite` or `postgresql` (ValueError for another name)."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{name} is not the name of a backup")
    return KINDS[match.group(2)]


def backup_time(name: str) -> float | None:
    """When the backup named `name` was taken (from its name), or None if it is not a backup's name."""
    match = _NAME.match(name)
    if not match:
        return None
    return parse_file_stamp(match.group(1))


def checksum_path(backup: Path) -> Path:
    """Where the sha256 sidecar of `backup` lives: beside it, same name plus CHECKSUM_SUFFIX."""
    return backup.with_name(backup.name + CHECKSUM_SUFFIX)


def run_backup(settings: Settings, clock: Callable[[], float] = time.time) -> BackupOutcome:
    """Back the database up and prune old backups, unless another backup holds the lock."""
    target, database, backup_dir = settings.database, settings.database_path, settings.backup_dir
    if not isinstance(target, PostgresTarget) and not database.exists():
        return BackupOutcome("failed", error=f"database {database} does not exist (DATABASE_PATH); nothing to back up")
    try:
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return BackupOutcome("failed", error=_describe_os_error(exc, backup_dir))
    with try_file_lock(backup_dir / LOCK_NAME) as held:
        if not held:
            return BackupOutcome("skipped", error="another backup is running (backup lock held)")
        started = clock()
        remove_partial_files(backup_dir)
        try:
            if isinstance(target, PostgresTarget):
                info = write_dump(target, backup_dir, started, clock)
            else:
                info = write_backup(database, backup_dir, started, clock)
        except BackupError as exc:
            _record(settings, started, clock(), "failed", error=str(exc))
            log.error("backup failed: %s", exc)
            return BackupOutcome("failed", error=str(exc), retriable=exc.retriable)
        _record(settings, started, info.finished_at, "ok", info=info)
        removed = prune_backups(backup_dir, settings.backup_retention_days, clock())
    log.info("backup %s: %d bytes in %.2fs; %d old backup(s) removed", info.file, info.size_bytes,
             info.duration_seconds, len(removed))
    return BackupOutcome("ok", info, removed)


def write_backup(database: Path, backup_dir: Path, started: float,
                 clock: Callable[[], float] = time.time) -> BackupInfo:
    """Copy, check, compress and checksum `database` into a new final-named file in `backup_dir`.

    The caller holds the backup lock. On any failure every file this call created is removed.
    """
    name = _free_name(backup_dir, started)
    final = backup_dir / name
    raw_copy = backup_dir / f".{name.removesuffix('.gz')}.partial"
    compressed = backup_dir / f".{name}.partial"
    try:
        _copy_database(database, raw_copy)
        _check_copy(raw_copy)
        digest, size = _compress(raw_copy, compressed, name.removesuffix(".gz"), started)
        _publish(compressed, final, digest)
    except OSError as exc:
        raise BackupError(_describe_os_error(exc, backup_dir)) from exc
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:  # the uncompressed copy is written in BACKUP_DIR
            raise BackupError(_no_space(backup_dir)) from exc
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise BackupError(f"database {database} is damaged ({exc}): {_DAMAGED_ADVICE}") from exc
        busy = code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        raise BackupError(f"could not copy database {database}: {exc}", retriable=busy) from exc
    finally:
        for path in (raw_copy, compressed, *journal_files(raw_copy)):
            path.unlink(missing_ok=True)
    return BackupInfo(name, size, digest, started, clock())


def write_dump(target: PostgresTarget, backup_dir: Path, started: float,
               clock: Callable[[], float] = time.time) -> BackupInfo:
    """`pg_dump` the PostgreSQL database, check the archive, checksum it, and give it its final name.

    The caller holds the backup lock. On any failure every file this call created is removed.
    """
    name = _free_name(backup_dir, started, DUMP_SUFFIX)
    final = backup_dir / name
    partial = backup_dir / f".{name}.partial"
    try:
        _write_new_file(partial, b"")  # created 0600 before pg_dump writes the data into it
        dump_database(target, partial)
        read_dump(partial)
        _fsync_file(partial)
        digest, size = file_sha256(partial), partial.stat().st_size
        _publish(partial, final, digest)
    except OSError as exc:
        raise BackupError(_describe_os_error(exc, backup_dir)) from exc
    except PostgresToolError as exc:
        raise BackupError(str(exc), retriable=exc.retriable) from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(name, size, digest, started, clock())


def _publish(archive: Path, final: Path, digest: str) -> None:
    """Give a finished, checked archive its checksum sidecar, then its final name: a backup under its final
    name always has its checksum beside it. On failure neither is left behind."""
    sidecar = final.with_name(f".{final.name}{CHECKSUM_SUFFIX}.partial")
    try:
        _write_new_file(sidecar, f"{digest}  {final.name}\n".encode())
        os.replace(sidecar, checksum_path(final))
        os.replace(archive, final)
        fsync_directory(final.parent)
    finally:
        sidecar.unlink(missing_ok=True)
        if not final.exists():
            checksum_path(final).unlink(missing_ok=True)


def remove_partial_files(backup_dir: Path) -> list[str]:
    """Remove what a killed backup left: temporary files, and sidecars whose backup never got its name.

    Call only while holding the backup lock, or a running backup's files would go.
    """
    removed = []
    for path in backup_dir.iterdir():
        backup = path.name.removesuffix(CHECKSUM_SUFFIX)
        orphan_sidecar = backup != path.name and backup_time(backup) is not None and not (backup_dir / backup).exists()
        if path.name.startswith("." + NAME_PREFIX) or (path.name.startswith(NAME_PREFIX) and orphan_sidecar):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.info("removed %d file(s) left by an interrupted backup: %s", len(removed), ", ".join(sorted(removed)))
    return removed


def list_backups(backup_dir: Path, verify: bool = True) -> list[BackupFile]:
    """The backups in `backup_dir`, newest first, each with its checksum verified unless `verify` is off."""
    if not backup_dir.is_dir():
        return []
    found = []
    for path in backup_dir.iterdir():
        created_at = backup_time(path.name)
        if created_at is None or not path.is_file():
            continue
        checksum = verify_checksum(path) if verify else "unchecked"
        found.append(BackupFile(path, created_at, path.stat().st_size, checksum))
    return sorted(found, key=lambda backup: backup.created_at, reverse=True)


def verify_checksum(backup: Path) -> str:
    """`ok` when the file's sha256 matches its sidecar, `mismatch` when not, `missing` without a sidecar."""
    expected = expected_checksum(backup)
    if expected is None:
        return "missing"
    return "ok" if file_sha256(backup) == expected else "mismatch"


def expected_checksum(backup: Path) -> str | None:
    """The sha256 the sidecar records (the file name it gives is not checked: backups may be renamed)."""
    try:
        line = checksum_path(backup).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    match = _SIDECAR_LINE.match(line)
    return match.group(1) if match else None


def file_sha256(path: Path) -> str:
    """The sha256 of the file at `path` as hex, read in chunks so large backups need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def prune_backups(backup_dir: Path, retention_days: int, now: float) -> list[str]:
    """Delete backups taken more than `retention_days` before `now`, keeping the newest verified one of each kind."""
    backups = list_backups(backup_dir, verify=False)
    newest_good: dict[str, Path] = {}
    for backup in backups:  # newest first: each kind's files are read only until one verifies
        if backup.kind not in newest_good and verify_checksum(backup.path) == "ok":
            newest_good[backup.kind] = backup.path
    cutoff = now - retention_days * DAY_SECONDS
    removed = []
    for backup in backups:
        if backup.created_at >= cutoff or backup.path in newest_good.values():
            continue
        try:
            backup.path.unlink()
            checksum_path(backup.path).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove old backup %s: %s", backup.path, exc.strerror)
            continue
        removed.append(backup.name)
    if removed:
        log.info("removed %d backup(s) older than %d days: %s", len(removed), retention_days, ", ".join(removed))
    return removed


def last_backup(conn: Connection) -> BackupInfo | None:
    """The newest successful backup recorded in the database (for /health and /metrics), or None."""
    row = conn.execute(
        "SELECT file, size_bytes, sha256, started_at, finished_at FROM backups WHERE status = 'ok'"
        " ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    return BackupInfo(*row) if row else None


def _free_name(backup_dir: Path, at: float, suffix: str = NAME_SUFFIX) -> str:
    """The backup's name; a second backup within the same second takes the next free second."""
    name = backup_name(at, suffix)
    while (backup_dir / name).exists():
        at += 1
        name = backup_name(at, suffix)
    return name


def _copy_database(database: Path, copy: Path) -> None:
    """One consistent snapshot of `database` (committed transactions only) into a new file `copy`.

    Both are opened by path, not as `file:` URIs: a `#`, `?` or `%` in a path would cut or change
    a URI, and the backup would copy another (new, empty) database and call it good.
    """
    _write_new_file(copy, b"")  # created 0600 before any data is in it
    source = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        target = sqlite3.connect(copy, isolation_level=None)
        try:
            source.backup(target)  # all pages in one step: one read snapshot, no restart on writes
            target.execute("PRAGMA journal_mode = DELETE")  # a self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()


def _check_copy(copy: Path) -> None:
    conn = sqlite3.connect(copy)  # by path, as in _copy_database
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(10)")]
    finally:
        conn.close()
    if problems != ["ok"]:
        raise BackupError(f"the copy of the database fails integrity_check ({'; '.join(problems)}): the database "
                          f"itself is probably damaged: {_DAMAGED_ADVICE}")


class _HashingWriter:
    """A file wrapper that hashes and counts what passes through it to the disk."""

    def __init__(self, file: BinaryIO):
        self.file = file
        self.digest = hashlib.sha256()
        self.size_bytes = 0

    def write(self, data: bytes) -> int:
        written = self.file.write(data)
        self.digest.update(data)
        self.size_bytes += len(data)
        return written

    def flush(self) -> None:
        self.file.flush()


def _compress(source: Path, target: Path, inner_name: str, mtime: float) -> tuple[str, int]:
    """gzip `source` into a new file `target` (fsynced); the sha256 and size of what was written."""
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        hashing = _HashingWriter(out)
        with gzip.GzipFile(inner_name, "wb", COMPRESS_LEVEL, hashing, mtime=int(mtime)) as packed, \
                open(source, "rb") as raw:
            while chunk := raw.read(CHUNK_BYTES):
                packed.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return hashing.digest.hexdigest(), hashing.size_bytes


def _write_new_file(path: Path, data: bytes) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_file(path: Path) -> None:
    """Make a file another process wrote durable before it gets its final name."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def fsync_directory(directory: Path) -> None:
    """Make the renames durable: a rename lives in the directory, not in the file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def journal_files(database: Path) -> list[Path]:
    """The files SQLite may keep beside a database: rollback journal, WAL, WAL index."""
    return [database.with_name(database.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


def _describe_os_error(exc: OSError, backup_dir: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _no_space(backup_dir)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {backup_dir} (BACKUP_DIR): {exc.strerror}; check the volume's mount and permissions"
    where = f" ({exc.filename})" if exc.filename else ""
    return f"backup failed writing to {backup_dir}: {exc.strerror or exc}{where}; older backups were kept"


def _no_space(backup_dir: Path) -> str:
    return (f"no space left in {backup_dir} (BACKUP_DIR) for the backup, which needs room for an uncompressed "
            f"copy of the database while it is made: free space there or lower BACKUP_RETENTION_DAYS; "
            f"older backups were kept")


def _record(settings: Settings, started: float, finished: float, status: str, info: BackupInfo | None = None,
            error: str | None = None) -> None:
    """Add the attempt to the `backups` table of every cluster the backup holds, for /health, /metrics and
    BackupMissing; a store that cannot take it is logged, not fatal."""
    row = (started, finished, status, info.file if info else None, info.size_bytes if info else None,
           info.sha256 if info else None, error)
    for cluster in _clusters_backed_up(settings):
        try:
            # Another cluster's schema is left at its version: its own collector migrates it.
            conn = open_store(settings, cluster=cluster, migrate=cluster == settings.cluster_name)
            try:
                with transaction(conn):
                    conn.execute("INSERT INTO backups (started_at, finished_at, status, file, size_bytes, sha256,"
                                 " error) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            finally:
                conn.close()
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not record the backup in the store of cluster %s: %s", cluster, exc)


def _clusters_backed_up(settings: Settings) -> list[str]:
    """CLUSTER_NAME's, the one cluster of a SQLite file; on PostgreSQL every cluster of the database too,
    since a dump holds every cluster's schema."""
    try:
        clusters = store_clusters(settings)
    except (StoreError, sqlite3.Error) as exc:
        log.warning("could not list the clusters of the store: %s", exc)
        clusters = []
    return [settings.cluster_name, *(name for name in clusters if name != settings.cluster_name)]
