"""The diagnose check of the database: does it open as the functions open it, its size, schema and integrity.

Everything is read through a read-only connection, within the check's timeout: `integrity_check`
of a large file is interrupted rather than left to run.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from shared.core.database_url import PostgresTarget
from shared.core.formats import format_bytes
from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE, Finding, Section
from shared.ops.health import database_size_bytes
from shared.store.connection import SCHEMA_VERSION, SchemaOutdated, SchemaTooNew, StoreError, connect, open_store
from shared.store.dialect import Connection
from shared.store.size import stored_bytes

# Below this much free space the next collections, migrations and backups are about to fail to write.
LOW_FREE_BYTES = 64 * 1024**2
RESTORE_FIX = ("restore the newest good backup (`k8s-monitor backups`, then `k8s-monitor restore FILE`), or move the "
               "file away to start a new history")


def database_section(settings: Settings, timeout_seconds: float) -> Section:
    """Size, WAL, schema version, rows per table and `integrity_check`, read-only, within the timeout."""
    if isinstance(settings.database, PostgresTarget):
        return _postgres_section(settings, settings.database, timeout_seconds)
    path = settings.database_path
    copies = sorted(p.name for p in path.parent.glob(f"{path.name}.pre-migration-*")) if path.parent.is_dir() else []
    data: dict[str, Any] = {"path": str(path), "exists": path.is_file(), "pre_migration_copies": copies}
    findings = []
    conn = None
    try:
        conn = connect(path, readonly=True)  # the verdict the functions would meet
    except StoreError as exc:
        findings.append(Finding("open", PROBLEM, redact(str(exc)), _open_fix(exc, path)))
    if not data["exists"]:
        if conn is not None:
            conn.close()
        return Section(PROBLEM, f"no database at {path}", findings, data)
    wal = path.with_name(path.name + "-wal")
    data.update(size_bytes=path.stat().st_size, wal_bytes=wal.stat().st_size if wal.exists() else 0,
                total_bytes=database_size_bytes(path))
    stats = os.statvfs(path.parent)
    data["volume_free_bytes"] = stats.f_bavail * stats.f_frsize
    if conn is not None:
        try:
            _read_facts(conn, data, timeout_seconds)
        except sqlite3.DatabaseError as exc:
            findings.append(_read_failure(path, exc, timeout_seconds))
        finally:
            conn.close()
    integrity = data.get("integrity_check")
    if integrity is not None and integrity != ["ok"]:
        findings.append(Finding("integrity_check", PROBLEM, "; ".join(integrity[:5]), RESTORE_FIX))
    if data["volume_free_bytes"] < LOW_FREE_BYTES:
        findings.append(Finding("free space", PROBLEM, f"{data['volume_free_bytes']} bytes free on the volume",
                                "grow the volume or lower RETENTION_RAW_DAYS / RETENTION_HOURLY_DAYS"))
    summary = f"{path}: {format_bytes(data['size_bytes'])} + WAL {format_bytes(data['wal_bytes'])}, "
    if "schema_version" not in data:
        summary += "unreadable"
    else:
        summary += f"schema {data['schema_version']} (this version: {SCHEMA_VERSION})"
    if "rows" in data:
        summary += (f", integrity {'ok' if integrity == ['ok'] else 'not ok' if integrity else 'not checked'}, "
                    f"{sum(data['rows'].values())} rows in {len(data['rows'])} tables")
    return Section(PROBLEM if any(f.status != OK for f in findings) else OK, summary, findings, data)


def _postgres_section(settings: Settings, target: PostgresTarget, timeout_seconds: float) -> Section:
    """The cluster's schema on the server, named by its URL without the password: version, size, rows per
    table, and the clusters sharing the database."""
    from shared.store.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
    from shared.store.postgres import cluster_schemas, schema_name

    data: dict[str, Any] = {"url": target.shown, "cluster": settings.cluster_name,
                            "schema": schema_name(settings.cluster_name)}
    try:
        conn = open_store(settings, readonly=True, timeout_seconds=timeout_seconds)
    except (StoreError, sqlite3.Error) as exc:
        fix = (_open_fix(exc, settings.database_path) if isinstance(exc, StoreError)
               else "check that the server runs and answers at this address, and DATABASE_PASSWORD")
        return Section(PROBLEM, f"{target.shown}: cannot be opened", [Finding("open", PROBLEM, redact(str(exc)), fix)],
                       data)
    try:
        data["schema_version"] = data["expected_schema_version"] = POSTGRES_SCHEMA_VERSION
        data["total_bytes"] = stored_bytes(conn)
        names = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")]
        data["rows"] = {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
        data["clusters"] = [name for name, _ in cluster_schemas(conn.raw)]  # type: ignore[attr-defined]
    except sqlite3.Error as exc:
        return Section(PROBLEM, f"{target.shown}: cannot be read", [Finding("read", PROBLEM, redact(str(exc)))], data)
    finally:
        conn.close()
    summary = (f"{target.shown} cluster {settings.cluster_name!r}: {format_bytes(data['total_bytes'])}, schema "
               f"{data['schema_version']}, {sum(data['rows'].values())} rows in {len(data['rows'])} tables; "
               f"{len(data['clusters'])} cluster(s) in the database")
    return Section(OK, summary, [], data)


def _read_facts(conn: Connection, data: dict[str, Any], timeout_seconds: float) -> None:
    """Schema version, journal mode, pages, rows per table and `integrity_check` into `data`, one by one:
    what was read before the timeout interrupted the rest stays."""
    ends = time.monotonic() + timeout_seconds
    assert isinstance(conn, sqlite3.Connection)  # PostgreSQL: _postgres_section
    conn.set_progress_handler(lambda: time.monotonic() > ends, 10_000)  # interrupts a scan past the timeout
    data["schema_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
    data["expected_schema_version"] = SCHEMA_VERSION
    data["journal_mode"] = conn.execute("PRAGMA journal_mode").fetchone()[0]
    data["page_size"] = conn.execute("PRAGMA page_size").fetchone()[0]
    data["freelist_pages"] = conn.execute("PRAGMA freelist_count").fetchone()[0]
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    data["rows"] = {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
    data["integrity_check"] = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]


def _read_failure(path: Path, exc: sqlite3.DatabaseError, timeout_seconds: float) -> Finding:
    """A read that stopped: cut off by the timeout, or the file is damaged past its header."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
        return Finding("read", UNAVAILABLE, f"not finished within {timeout_seconds:g}s (--timeout)",
                       "run again with a larger --timeout")
    damaged = "" if isinstance(exc, sqlite3.OperationalError) else ": it is damaged"
    return Finding("read", PROBLEM, f"database {path} cannot be read ({exc}){damaged}", RESTORE_FIX)


def _open_fix(exc: StoreError, path: Path) -> str:
    """What to do about a database the functions cannot open, by the kind of refusal."""
    if isinstance(exc, SchemaTooNew):
        return ("roll the image forward again, or restore the copy or backup taken before the upgrade (README: "
                "Upgrades and rollbacks)")
    if isinstance(exc, SchemaOutdated):
        return "run one collection: the collect function migrates the schema"
    if not path.exists():
        return "run a collection (`k8s-monitor collect`, or POST to collect): it creates the database"
    return RESTORE_FIX
