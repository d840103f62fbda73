"""Restoring a backup: everything is verified before the database is touched, then one atomic swap.

The backup's sha256 must match its sidecar; it is unpacked beside the database (same filesystem, so
the swap is a rename), and the unpacked file must pass `integrity_check` and hold this monitor's
schema at a version this code can use. Only then is the current database checkpointed and switched
out of WAL mode (which fails if another process has it open), linked aside as
`<name>.replaced-YYYYmmdd_HHMMSS`, and replaced with `os.replace`. A corrupt, truncated or foreign
file is refused with the reason and the current database stays as it was.

The monitor's writers must be stopped while restoring: collections and backups are locked out here
(their file locks), and a database another process holds open is refused rather than swapped under it.

On PostgreSQL a restore loads a verified `pg_dump` archive (`restore_postgres_backup`) into an empty
database in one transaction. A database that already holds tables is refused unless forced: then the
objects the archive holds are dropped and recreated (`pg_restore --clean --if-exists`), in the same
transaction, so a failure leaves the database as it was. Objects the archive does not hold stay.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import shutil
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.core.database_url import PostgresTarget
from shared.core.formats import file_stamp
from shared.core.locking import try_file_lock
from shared.core.settings import Settings
from shared.ops.backup import (
    CHUNK_BYTES,
    LOCK_NAME,
    backup_kind,
    checksum_path,
    expected_checksum,
    file_sha256,
    fsync_directory,
    journal_files,
)
from shared.ops.postgres_dump import PostgresToolError, read_dump, restore_dump, user_objects
from shared.store.connection import SCHEMA_VERSION, connect, schema_version
from shared.store.retention import retention_lock_path

log = logging.getLogger(__name__)

# Tables every schema version has (container_spans came with version 4): an older backup is restored,
# then migrated like an older database.
REQUIRED_TABLES = frozenset({"runs", "nodes", "node_samples", "workloads", "containers", "pods", "samples",
                             "hourly_rollups", "backups"})
_UNTOUCHED = "the current database was not changed"


class RestoreError(Exception):
    """The backup was refused or could not be put in place; the message says why and what to do."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did: where from, where to, what it replaced, and what the database now holds."""

    backup: Path
    database: Path
    replaced: Path | None
    schema_version: int
    runs: int
    last_run_at: float | None


@dataclass(frozen=True)
class DumpRestoreResult:
    """What a restore into PostgreSQL did: which archive, into which database (shown URL), how many
    tables it loaded, and the objects the database held before (dropped and recreated when forced)."""

    backup: Path
    database: str
    tables: int
    objects_before: list[str]


def restore_backup(settings: Settings, backup: Path, clock: Callable[[], float] = time.time) -> RestoreResult:
    """Verify `backup` (a path, or a name in BACKUP_DIR) and swap it in as the SQLite database."""
    if isinstance(settings.database, PostgresTarget):
        raise RestoreError(f"DATABASE_URL names PostgreSQL ({settings.database.shown}): its backups are restored "
                           f"with restore_postgres_backup; {_UNTOUCHED}")
    source = resolve_backup(backup, settings.backup_dir)
    _refuse_other_kind(source, "sqlite", settings.database_path.as_posix())
    verify_backup_checksum(source)
    database = settings.database_path
    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in database.parent.glob(f".{database.name}.restore-*"):
        stale.unlink(missing_ok=True)  # left by a restore that was killed
    candidate = database.with_name(f".{database.name}.restore-{os.getpid()}.partial")
    try:
        _unpack(source, candidate)
        _check_candidate(candidate, source.name)
        with _writers_locked_out(settings):
            replaced = _swap_in(candidate, database, clock())
    finally:
        for path in (candidate, *journal_files(candidate)):
            path.unlink(missing_ok=True)
    conn = connect(database)  # brings an older schema up to date
    try:
        runs, last_run_at = conn.execute("SELECT COUNT(*), MAX(started_at) FROM runs").fetchone()
        version = schema_version(conn)
    finally:
        conn.close()
    log.info("restored %s into %s (replaced file kept at %s)", source, database, replaced)
    return RestoreResult(source, database, replaced, version, runs, last_run_at)


def restore_postgres_backup(settings: Settings, backup: Path, force: bool = False) -> DumpRestoreResult:
    """Verify the archive `backup` (a path, or a name in BACKUP_DIR) and load it into the PostgreSQL database.

    Refuses a database holding tables, views or sequences unless `force`: then the objects the
    archive holds are dropped and recreated. The archive is not migrated here; the next run of any
    function (or `k8s-monitor migrate`) brings an older schema up to date.
    """
    target = settings.database
    if not isinstance(target, PostgresTarget):
        raise RestoreError(f"DATABASE_URL names no PostgreSQL database (the store is {target.shown}); {_UNTOUCHED}")
    source = resolve_backup(backup, settings.backup_dir)
    _refuse_other_kind(source, "postgresql", target.shown)
    verify_backup_checksum(source)
    try:
        contents = read_dump(source)
    except PostgresToolError as exc:
        raise RestoreError(f"{exc}; {_UNTOUCHED}") from None
    if not any(table.rpartition(".")[2] == "runs" for table in contents.tables):  # in any cluster's schema
        raise RestoreError(f"{source.name} holds no `runs` table: it is not a backup of this monitor's database; "
                           f"{_UNTOUCHED}")
    lock = settings.backup_dir / LOCK_NAME
    with ExitStack() as stack:
        if lock.parent.is_dir() and not stack.enter_context(try_file_lock(lock)):
            raise RestoreError(f"a backup is running; wait until it finishes and restore again; {_UNTOUCHED}")
        try:
            before = user_objects(target)
            if before and not force:
                shown = ", ".join(before[:5]) + (f" and {len(before) - 5} more" if len(before) > 5 else "")
                raise RestoreError(
                    f"database {target.shown} is not empty (it holds {shown}): restore into an empty database, or "
                    f"pass --force to drop and recreate the objects the backup holds; {_UNTOUCHED}")
            restore_dump(target, source, replace=force)
        except PostgresToolError as exc:
            raise RestoreError(f"{exc}; the restore ran in one transaction: {_UNTOUCHED}") from None
    log.info("restored %s into %s (%d tables; %d objects were there before)", source, target.shown,
             len(contents.tables), len(before))
    return DumpRestoreResult(source, target.shown, len(contents.tables), before)


def _refuse_other_kind(backup: Path, kind: str, database: str) -> None:
    """A SQLite backup goes into SQLite, a pg_dump archive into PostgreSQL: say so instead of failing later."""
    try:
        found = backup_kind(backup.name)
    except ValueError:
        return  # a renamed backup: its content is checked as usual
    if found != kind:
        raise RestoreError(f"{backup.name} is a {found} backup and the database ({database}) is {kind}: a backup is "
                           f"restored into the kind of database it was taken from; {_UNTOUCHED}")


def resolve_backup(backup: Path, backup_dir: Path) -> Path:
    """The backup file: `backup` itself if it exists, else that name in BACKUP_DIR."""
    for path in (backup, backup_dir / backup.name):
        if path.is_file():
            return path
    raise RestoreError(f"no backup file {backup} (looked there and in BACKUP_DIR {backup_dir}); "
                       f"`k8s-monitor backups` lists the backups")


def verify_backup_checksum(backup: Path) -> None:
    """Refuse (RestoreError) a backup whose sidecar is missing or whose sha256 does not match it."""
    expected = expected_checksum(backup)
    if expected is None:
        raise RestoreError(f"no readable checksum file {checksum_path(backup).name} beside {backup}: every backup "
                           f"is written with one; copy it along with the backup; {_UNTOUCHED}")
    actual = file_sha256(backup)
    if actual != expected:
        raise RestoreError(f"{backup.name} is damaged or incomplete: its sha256 is {actual}, its checksum file "
                           f"expects {expected}; {_UNTOUCHED}; try an older backup (`k8s-monitor backups`)")


def _unpack(backup: Path, candidate: Path) -> None:
    try:
        with gzip.open(backup, "rb") as packed, \
                open(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            shutil.copyfileobj(packed, out, CHUNK_BYTES)
            out.flush()
            os.fsync(out.fileno())
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise RestoreError(f"{backup.name} is not a complete gzip file ({exc}): it is damaged, truncated or not "
                           f"made by `k8s-monitor backup`; {_UNTOUCHED}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RestoreError(f"no space in {candidate.parent} to unpack {backup.name} beside the database; "
                               f"free space there; {_UNTOUCHED}") from None
        raise RestoreError(f"cannot unpack {backup.name} into {candidate.parent}: {exc.strerror or exc}; "
                           f"{_UNTOUCHED}") from None


def _check_candidate(candidate: Path, shown_name: str) -> None:
    """The unpacked file must be an intact SQLite database with this monitor's schema."""
    try:
        conn = sqlite3.connect(candidate, isolation_level=None)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(10)")]
            if problems != ["ok"]:
                raise RestoreError(f"{shown_name} holds a damaged database (integrity_check: {'; '.join(problems)}); "
                                   f"{_UNTOUCHED}; try an older backup")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = schema_version(conn)
            conn.execute("PRAGMA journal_mode = DELETE")  # self-contained: nothing beside it to move along
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_CORRUPT:
            raise RestoreError(f"{shown_name} holds a damaged database ({exc}); {_UNTOUCHED}; try an older backup") \
                from None
        raise RestoreError(f"{shown_name} does not hold a SQLite database ({exc}); {_UNTOUCHED}") from None
    missing = sorted(REQUIRED_TABLES - tables)
    if missing or version < 1:
        what = f"it lacks the tables {', '.join(missing)}" if missing else "it has no schema version"
        raise RestoreError(f"{shown_name} holds a SQLite database of another application ({what}); {_UNTOUCHED}")
    if version > SCHEMA_VERSION:
        raise RestoreError(f"{shown_name} was written by a newer k8s-resource-monitor (schema {version}, this one "
                           f"knows up to {SCHEMA_VERSION}); restore it with that version; {_UNTOUCHED}")


@contextmanager
def _writers_locked_out(settings: Settings) -> Iterator[None]:
    """Hold the collection, retention and backup locks, or refuse: none of them may run during the swap."""
    locks = {
        "a collection": settings.lock_path,
        "a retention pass": retention_lock_path(settings),
        "a backup": settings.backup_dir / LOCK_NAME,
    }
    with ExitStack() as stack:
        for what, path in locks.items():
            if path.parent.is_dir() and not stack.enter_context(try_file_lock(path)):
                raise RestoreError(f"{what} is running; wait until it finishes and restore again; {_UNTOUCHED}")
        yield


def _swap_in(candidate: Path, database: Path, now: float) -> Path | None:
    """Replace `database` with `candidate` in one rename; the old file (and its WAL) is kept aside."""
    if not database.exists():
        os.replace(candidate, database)
        fsync_directory(database.parent)
        return None
    _quiesce(database)
    replaced = _replaced_name(database, now)
    try:
        os.link(database, replaced)
    except OSError:  # a filesystem without hard links: a copy keeps the old data just as well
        shutil.copy2(database, replaced)
    for journal, kept in zip(journal_files(database), journal_files(replaced)):
        if journal.exists():  # only if the old database could not be checkpointed: its pages go with it
            os.replace(journal, kept)
    os.replace(candidate, database)
    fsync_directory(database.parent)
    return replaced


def _quiesce(database: Path) -> None:
    """Fold the WAL into the file and leave WAL mode, so no -wal/-shm of the old file stays behind.

    Leaving WAL mode needs the only connection: it fails if any other process has the file open.
    A database too damaged to open is swapped anyway (that is what restores are for); its WAL and
    shared-memory files are then moved aside with it.
    """
    try:
        conn = sqlite3.connect(database, timeout=2, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise RestoreError(f"database {database} is in use by another process ({exc}): stop the monitor's "
                               f"functions (or `k8s-monitor serve`) and restore again; {_UNTOUCHED}") from None
        log.warning("the current database %s cannot be checkpointed (%s); it is moved aside as it is", database, exc)
        return
    except sqlite3.DatabaseError as exc:
        log.warning("the current database %s is damaged (%s); it is moved aside as it is", database, exc)
        return
    if mode != "delete":
        raise RestoreError(f"database {database} is in use by another process (it stays in {mode} mode): stop the "
                           f"monitor's functions and restore again; {_UNTOUCHED}")


def _replaced_name(database: Path, now: float) -> Path:
    while True:
        stamp = file_stamp(now)
        path = database.with_name(f"{database.name}.replaced-{stamp}")
        if not path.exists():
            return path
        now += 1
