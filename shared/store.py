"""The SQLite database: opening it safely, and its schema with forward-only migrations.

WAL lets readers (health, report) run while a collection writes; `busy_timeout` makes writers wait
for each other instead of failing with "database is locked". The schema version lives in
`PRAGMA user_version`; a database newer than this code is refused, so a rolled-back image never
writes into a schema it does not know.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.schema import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 30_000


class StoreError(Exception):
    """The database cannot be used; the message says what to do."""


class SchemaTooNew(StoreError):
    """The file was written by a newer version of the monitor."""


class SchemaOutdated(StoreError):
    """The file needs migrations that a read-only opener may not run."""


def connect(path: Path, *, readonly: bool = False, migrate: bool = True) -> sqlite3.Connection:
    """Open the database, creating and migrating it unless `readonly`.

    Connections are in autocommit mode: writers open their own `BEGIN IMMEDIATE` transaction
    (see `transaction`), so a write never starts as a read and then fails to upgrade its lock.
    """
    if readonly:
        if not path.exists():
            raise StoreError(f"database {path} does not exist yet (DATABASE_PATH); run a collection first")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
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


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_schema(conn: sqlite3.Connection, current: int) -> None:
    """Apply each missing migration in its own transaction, bumping user_version with it."""
    for number in range(current, SCHEMA_VERSION):
        with transaction(conn):
            if schema_version(conn) != number:  # another process migrated while we waited for the lock
                continue
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> Iterator[str]:
    """Split a migration script on `;` at line ends (the DDL here has no `;` inside strings)."""
    for part in script.split(";\n"):
        if part.strip():
            yield part


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken with the write lock up front; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
