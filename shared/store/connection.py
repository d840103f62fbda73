"""The SQLite database: opening it safely, and its schema with forward-only migrations.

WAL lets readers (health, report) run while a collection writes; `busy_timeout` makes writers wait
for each other instead of failing with "database is locked". The schema version lives in
`PRAGMA user_version`; a database newer than this code is refused, so a rolled-back image never
writes into a schema it does not know. Before migrating a database that holds data, a copy of it
is kept beside it (`<name>.pre-migration-v<N>-<time>.db`): what a rolled-back image can read.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.database_url import PostgresTarget
from shared.core.formats import file_stamp
from shared.store.dialect import Connection
from shared.store.schema import MIGRATIONS, BatchedMigration

if TYPE_CHECKING:
    from shared.core.settings import Settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 30_000
# After each batch of a BatchedMigration the write lock stays free this long (or as long as the batch
# took, if shorter): SQLite's busy handler polls every 100 ms at most, so a waiting writer gets its turn.
MIGRATION_PAUSE_SECONDS = 0.1


class StoreError(Exception):
    """The database cannot be used; the message says what to do."""


class SchemaTooNew(StoreError):
    """The file was written by a newer version of the monitor."""


class SchemaOutdated(StoreError):
    """The file needs migrations that a read-only opener may not run."""


class ServerUnavailable(StoreError):
    """The PostgreSQL server does not answer (down, restarting, unreachable): worth a retry."""


class DatabaseMissing(StoreError):
    """A read-only opener found no database file (no collection has run yet)."""


def database_uri(path: Path, mode: str) -> str:
    """The SQLite URI of the file at `path`, opened in `mode` (`ro`, `rw` or `rwc`).

    The path is made absolute and percent-encoded, so `?`, `#`, `%` and spaces stay part of the file
    name instead of starting the query, the fragment or an escape (`f"file:{path}"` gets all three wrong).
    """
    return f"{Path(path).absolute().as_uri()}?mode={mode}"


def open_store(settings: Settings, *, readonly: bool = False, migrate: bool = True, cluster: str | None = None,
               timeout_seconds: float | None = None) -> Connection:
    """The store DATABASE_URL (or DATABASE_PATH) names: a SQLite file, or `cluster`'s schema on PostgreSQL
    (CLUSTER_NAME unless told), created and migrated unless `readonly`.

    `timeout_seconds` bounds connecting and each statement on PostgreSQL (health checks it with its own).
    """
    target = settings.database
    if isinstance(target, PostgresTarget):
        return connect_postgres(target, cluster or settings.cluster_name, readonly=readonly, migrate=migrate,
                                timeout_seconds=timeout_seconds)
    return connect(settings.database_path, readonly=readonly, migrate=migrate)


def store_name(settings: Settings) -> str:
    """The store as messages name it: the SQLite file's path, or the PostgreSQL URL without its password."""
    target = settings.database
    return target.shown if isinstance(target, PostgresTarget) else str(settings.database_path)


def store_clusters(settings: Settings) -> list[str]:
    """The clusters the store holds: CLUSTER_NAME's alone in a SQLite file; every cluster that wrote to the
    PostgreSQL database, by name."""
    target = settings.database
    if not isinstance(target, PostgresTarget):
        return [settings.cluster_name]
    from shared.store import postgres

    raw = postgres.open_raw(target, settings.health_check_timeout_seconds)
    try:
        return [name for name, _ in postgres.cluster_schemas(raw)]
    except postgres.psycopg.Error as exc:
        raise postgres._database_error(exc, target.shown) from None
    finally:
        raw.close()


def store_exists(settings: Settings) -> bool:
    """Whether the store may hold data: the SQLite file exists; a PostgreSQL server always may."""
    return isinstance(settings.database, PostgresTarget) or settings.database_path.exists()


def connect_postgres(target: PostgresTarget, cluster: str, *, readonly: bool = False, migrate: bool = True,
                     timeout_seconds: float | None = None) -> Connection:
    """`cluster`'s schema on the PostgreSQL server, refusing one newer than this code like a SQLite file."""
    from shared.store import postgres

    raw = postgres.open_raw(target, timeout_seconds)
    schema = postgres.schema_name(cluster)
    where = f"cluster {cluster!r} in {target.shown}"
    try:
        try:
            version = postgres.schema_version(raw, schema)
            if version is not None and version > postgres.SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{where} has schema version {version}, newer than this version of k8s-resource-monitor "
                    f"supports ({postgres.SCHEMA_VERSION}); upgrade the image, or restore a backup taken before "
                    f"the upgrade")
            if (version or 0) < postgres.SCHEMA_VERSION:
                if readonly and version is None:
                    raise DatabaseMissing(f"{where} holds no data yet; run a collection first")
                if readonly or not migrate:
                    raise SchemaOutdated(f"{where} has schema version {version}, expected "
                                         f"{postgres.SCHEMA_VERSION}; a collection (or `k8s-monitor migrate`) "
                                         f"upgrades it")
                postgres.migrate(raw, cluster, time.time())
            raw.execute(f"SET search_path = {schema}")
            if readonly:
                raw.execute("SET default_transaction_read_only = on")
        except postgres.psycopg.Error as exc:
            raise postgres._database_error(exc, target.shown) from None
    except BaseException:
        raw.close()
        raise
    return postgres.PostgresConnection(raw, target, cluster)


def is_postgres(conn: Connection) -> bool:
    """Whether `conn` is a PostgreSQL cluster schema (else a SQLite file)."""
    return getattr(conn, "dialect", "sqlite") == "postgresql"


def connect(path: Path, *, readonly: bool = False, migrate: bool = True) -> sqlite3.Connection:
    """Open the database, creating and migrating it unless `readonly`.

    Connections are in autocommit mode: writers open their own `BEGIN IMMEDIATE` transaction
    (see `transaction`), so a write never starts as a read and then fails to upgrade its lock.
    """
    conn = _open(path, readonly)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database {path} has schema version {version}, newer than this version of "
                f"k8s-resource-monitor supports ({SCHEMA_VERSION}); upgrade the image, or restore a "
                f"backup taken before the upgrade"
            )
        if version < SCHEMA_VERSION:
            if readonly or not migrate:
                raise SchemaOutdated(
                    f"database {path} has schema version {version}, expected {SCHEMA_VERSION}; "
                    f"a collection (or `k8s-monitor migrate`) upgrades it"
                )
            migrate_schema(conn, version)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"database {path} cannot be used: {exc}") from None
    except StoreError:
        conn.close()
        raise
    return conn


def _open(path: Path, readonly: bool) -> sqlite3.Connection:
    """The raw connection, or a StoreError naming DATABASE_PATH and what is wrong with it."""
    if path.exists() and not path.is_file():
        raise StoreError(f"database {path} is not a file (DATABASE_PATH)")
    try:
        if readonly:
            if not path.exists():
                raise DatabaseMissing(f"database {path} does not exist yet (DATABASE_PATH); run a collection first")
            return sqlite3.connect(database_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(database_uri(path, "rwc"), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of database {path} (DATABASE_PATH): {exc.strerror}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path} (DATABASE_PATH): {exc}") from None


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (its `user_version`); 0 for a new, empty file."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_schema(conn: sqlite3.Connection, current: int, clock: Callable[[], float] = time.time) -> None:
    """Apply each missing migration in its own transactions, bumping user_version with its last one.

    A database that already holds data (`current` > 0) is copied first: migrations only go forward.
    Foreign keys are off meanwhile: a migration moves rows as they are, and checking every moved row
    would only slow it down.
    """
    if current > 0:
        keep_pre_migration_copy(conn, clock())
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for number in range(current, SCHEMA_VERSION):
            _migrate(conn, number, MIGRATIONS[number])
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _migrate(conn: sqlite3.Connection, number: int, migration: str | BatchedMigration) -> None:
    """Migration `number` (to version number + 1); nothing when another process has applied it meanwhile.

    Each transaction first checks the version: a process that waited for the lock while another one
    migrated skips what is done, and two processes moving batches share the work.
    """
    if isinstance(migration, str):
        with transaction(conn):
            if schema_version(conn) == number:
                _run_script(conn, migration, number)
        return
    started, batches = time.perf_counter(), 0
    with transaction(conn):
        if schema_version(conn) != number:
            return
        _run_script(conn, migration.prepare)
    while True:
        batch_started = time.perf_counter()
        with transaction(conn):
            if schema_version(conn) != number or not migration.step(conn):
                break
        batches += 1
        time.sleep(min(time.perf_counter() - batch_started, MIGRATION_PAUSE_SECONDS))
    with transaction(conn):
        if schema_version(conn) != number:
            return
        while migration.step(conn):  # what a release on the previous schema wrote meanwhile
            batches += 1
        _run_script(conn, migration.finish, number)
    if migration.leftover:
        with transaction(conn):
            if not conn.execute(f"SELECT 1 FROM {migration.leftover} LIMIT 1").fetchone():
                conn.execute(f"DROP TABLE {migration.leftover}")
    if batches:
        log.warning("database migrated to schema version %d: %d batches in %.1fs", number + 1, batches,
                    time.perf_counter() - started)


def _run_script(conn: sqlite3.Connection, script: str, number: int | None = None) -> None:
    """Run a migration's SQL; with `number`, set the version it migrates to in the same transaction."""
    for statement in _statements(script):
        conn.execute(statement)
    if number is not None:
        conn.execute(f"PRAGMA user_version = {number + 1}")


def keep_pre_migration_copy(conn: sqlite3.Connection, now: float) -> Path | None:
    """Copy the database beside itself as `<name>.pre-migration-v<N>-YYYYmmdd_HHMMSS.db`; its path.

    An online backup (one consistent snapshot; it must run outside a write transaction, where it
    would wait for its own lock forever), self-contained (no -wal), under a temporary name until
    complete. None when another process finished migrating meanwhile. Without the copy there is
    no migration: StoreError says why.
    """
    database = Path(conn.execute("PRAGMA database_list").fetchone()[2])
    partial = database.with_name(f".{database.name}.pre-migration-{os.getpid()}-{threading.get_ident()}.partial")
    try:
        target = sqlite3.connect(database_uri(partial, "rwc"), uri=True, isolation_level=None)
        try:
            conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
            version = schema_version(target)
        finally:
            target.close()
        if version >= SCHEMA_VERSION:
            partial.unlink()
            return None
        stamp = file_stamp(now)
        copy = database.with_name(f"{database.name}.pre-migration-v{version}-{stamp}.db")
        os.replace(partial, copy)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"database {database} needs schema migrations, but the copy kept before migrating could "
                         f"not be written beside it ({exc}); free space on its volume and try again") from None
    log.warning("database %s: schema version %d copied to %s before migrating to version %d",
                database, version, copy, SCHEMA_VERSION)
    return copy


def _statements(script: str) -> Iterator[str]:
    """Split a migration script on `;` at line ends (the DDL here has no `;` inside strings)."""
    for part in script.split(";\n"):
        if part.strip():
            yield part


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """One write transaction, taken with the write lock up front; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite already rolled back on "disk full": keep that error, not ours
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

