"""How many bytes the store holds, on either backend."""

from __future__ import annotations

from shared.store.connection import is_postgres
from shared.store.dialect import Connection


def stored_bytes(conn: Connection) -> int:
    """SQLite: the file's pages. PostgreSQL: the cluster schema's tables with their indexes and TOAST."""
    if is_postgres(conn):
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
        return int(row[0])
    pages, page_size = (conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
    return int(pages * page_size)
