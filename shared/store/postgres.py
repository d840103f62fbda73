"""PostgreSQL as the store's second backend: one schema per cluster, the store's SQL translated, SQLite's rules kept.

Each cluster (CLUSTER_NAME) has a schema of its own in the shared database (`cluster_<name>_<hash>`,
listed with its name in `k8s_monitor.clusters`): every per-cluster row (runs, identities, spans,
samples, rollups, coverage, alert state, notifications, counters, processed events) is found by its
cluster without a column in every key and index, each cluster migrates and is pruned on its own,
and the store's queries run unchanged with `search_path` set to the cluster's schema. A fleet
reads every cluster's schema (`cluster_schemas`).

`PostgresConnection` answers the calls the store makes on a sqlite3 connection (`execute`,
`executemany`, `in_transaction`, `close`) with the SQL translated (shared/store/postgres_sql.py), and
keeps SQLite's one rule the store was written for: one writer at a time. `BEGIN IMMEDIATE` takes a
transaction-level advisory lock of the cluster, so a cluster's write transactions follow one another
as on SQLite (readers never wait: MVCC), while other clusters write side by side. Errors are raised as
the DB-API errors the store already handles (sqlite3's classes), their message naming the server by
its shown URL, never its password.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Loader

from shared.core.database_url import PostgresTarget
from shared.store.connection import ServerUnavailable
from shared.store.postgres_schema import MIGRATIONS
from shared.store.postgres_sql import to_postgres

SCHEMA_VERSION = len(MIGRATIONS)
REGISTRY = "k8s_monitor"  # the schema listing the clusters
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10
# Advisory lock classes (the first key of pg_advisory_lock(int, int)); the second is the cluster's.
WRITE_LOCK, MIGRATION_LOCK = 0x6B380002, 0x6B380003
SESSION_LOCKS = {"collector": 0x6B380001, "retention": 0x6B380004}


def schema_name(cluster: str) -> str:
    """The cluster's schema: readable, a valid identifier whatever the name, and unique by its hash."""
    slug = re.sub(r"[^a-z0-9_]+", "_", cluster.lower()).strip("_")[:40]
    return f"cluster_{slug}_{hashlib.sha256(cluster.encode()).hexdigest()[:8]}"


def _lock_key(schema: str) -> int:
    return zlib.crc32(schema.encode()) - 2**31  # a signed int4


class _NumericLoader(Loader):
    """numeric (SUM of bigint, AVG, ROUND) as SQLite answers it: an int when whole, else a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        try:
            return int(text)
        except ValueError:
            return float(text)


def _database_error(exc: psycopg.Error, shown: str) -> sqlite3.Error:
    """The psycopg error as the DB-API error the store handles, naming the server (never its password)."""
    message = f"PostgreSQL {shown}: {str(exc).strip() or type(exc).__name__}"
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        error = sqlite3.OperationalError(message)
        error.retriable = True  # type: ignore[attr-defined]  # the server is down or restarting: try again
        return error
    return sqlite3.DatabaseError(message)


class PostgresConnection:
    """One connection to a cluster's schema, used as the store uses a sqlite3 connection."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection, target: PostgresTarget, cluster: str):
        self.raw, self.target, self.cluster = raw, target, cluster
        self.schema = schema_name(cluster)
        self._write_key = _lock_key(self.schema)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise _database_error(exc, self.target.shown) from None

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor:
        with self._errors():
            if sql == "BEGIN IMMEDIATE":  # SQLite's writer lock: this cluster's write transactions take turns
                self.raw.execute("BEGIN")
                return self.raw.execute("SELECT pg_advisory_xact_lock(%s, %s)", (WRITE_LOCK, self._write_key))
            if sql == "BEGIN":  # a read snapshot (shared/store/snapshot.py): one committed state throughout
                return self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            return self.raw.execute(to_postgres(sql), parameters or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        with self._errors():
            cursor = psycopg.Cursor(self.raw)  # server-side parameters: one statement prepared, rows pipelined
            cursor.executemany(to_postgres(sql), list(rows))
            return cursor

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY `rows` into `table`: PostgreSQL's bulk path (a run's samples)."""
        with self._errors(), self.raw.cursor() as cursor, \
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR,
                                                    pq.TransactionStatus.ACTIVE)

    def close(self) -> None:
        self.raw.close()

    def try_session_lock(self, purpose: str) -> bool:
        """Take this cluster's lock for `purpose` (SESSION_LOCKS) for the session, False at once if another
        session holds it. It goes with the connection: a process that dies releases it with its connection."""
        with self._errors():
            row = self.raw.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                   (SESSION_LOCKS[purpose], self._write_key)).fetchone()
        return bool(row and row[0])


PARTITION_DAYS_AHEAD = 2
DAY_SECONDS = 86_400


def _partition(day: int) -> str:
    return "samples_d" + time.strftime("%Y%m%d", time.gmtime(day))


def ensure_sample_partitions(conn: PostgresConnection, day: int) -> None:
    """The partitions of `day` and the PARTITION_DAYS_AHEAD days after it, created when missing (in the
    caller's write transaction): a run's samples never wait for DDL, except on the first run of a day
    no earlier run created ahead."""
    days = [day + n * DAY_SECONDS for n in range(PARTITION_DAYS_AHEAD + 1)]
    missing = [d for d in days if (conn.execute("SELECT to_regclass(?)", (_partition(d),)).fetchone() or (None,))[0]
               is None]
    for d in missing:
        conn.execute(f"CREATE TABLE {_partition(d)} PARTITION OF samples FOR VALUES FROM ({d}) TO ({d + DAY_SECONDS})")


def drop_sample_partitions(conn: PostgresConnection, before: int) -> int:
    """Drop the day partitions that end at or before `before` (in the caller's transaction); the rows
    they held."""
    dropped = 0
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = CAST('samples' AS regclass) AND c.relname LIKE 'samples_d%'").fetchall()
    for name, bound in rows:
        match = re.search(r"TO \('?(\d+)'?\)", bound)
        if match is None or int(match[1]) > before:
            continue
        dropped += (conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone() or (0,))[0]
        conn.execute(f"DROP TABLE {name}")
    return dropped


def open_raw(target: PostgresTarget, timeout_seconds: float | None = None) -> psycopg.Connection:
    """A connection in autocommit mode (the store opens its own transactions), or ServerUnavailable naming
    the server (a StoreError: the functions answer 503, and the sender retries)."""
    kwargs = target.connect_kwargs()
    kwargs.setdefault("connect_timeout", max(1, round(timeout_seconds or DEFAULT_CONNECT_TIMEOUT_SECONDS)))
    kwargs.setdefault("application_name", "k8s-resource-monitor")
    if timeout_seconds is not None:
        kwargs["options"] = f"-c statement_timeout={round(timeout_seconds * 1000)}"
    try:
        # Client-side parameters for single statements, as SQLite binds them: a NULL or a number needs no
        # type from its context (`:kind IS NULL OR ...`), and PostgreSQL plans with the values.
        raw = psycopg.connect(autocommit=True, cursor_factory=psycopg.ClientCursor, **kwargs)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise ServerUnavailable(f"PostgreSQL {target.shown} cannot be reached: {str(exc).strip()}") from None
    raw.adapters.register_loader("numeric", _NumericLoader)
    return raw


def cluster_schemas(raw: psycopg.Connection) -> list[tuple[str, str]]:
    """(cluster name, schema) of every cluster that wrote to this database, by name."""
    exists = raw.execute("SELECT to_regclass(%s)", (f"{REGISTRY}.clusters",)).fetchone()
    if not exists or exists[0] is None:
        return []
    return [(name, schema) for name, schema in
            raw.execute(f"SELECT name, schema_name FROM {REGISTRY}.clusters ORDER BY name")]


def schema_version(raw: psycopg.Connection, schema: str) -> int | None:
    """The cluster schema's version; None when the schema does not exist yet."""
    if raw.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
        return None
    if raw.execute("SELECT to_regclass(%s)", (f"{schema}.schema_version",)).fetchone()[0] is None:  # type: ignore[index]
        return 0
    row = raw.execute(f"SELECT version FROM {schema}.schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(raw: psycopg.Connection, cluster: str, now: float) -> None:
    """Create or migrate the cluster's schema, all migrations in one transaction (PostgreSQL's DDL is
    transactional: a failed migration leaves the schema as it was), one process of the whole database at
    a time (two clusters' first runs would race to create the registry)."""
    schema = schema_name(cluster)
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATION_LOCK,))
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {REGISTRY}")
        raw.execute(f"CREATE TABLE IF NOT EXISTS {REGISTRY}.clusters (name text PRIMARY KEY,"
                    " schema_name text NOT NULL UNIQUE, created_at double precision NOT NULL)")
        raw.execute(f"INSERT INTO {REGISTRY}.clusters (name, schema_name, created_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (name) DO NOTHING", (cluster, schema, now))
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        raw.execute(f"SET LOCAL search_path = {schema}")
        raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = raw.execute("SELECT version FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if row is None:
            raw.execute("INSERT INTO schema_version (version) VALUES (0)")
        for migration in MIGRATIONS[current:]:
            raw.execute(migration)
        raw.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
