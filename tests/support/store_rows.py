"""Rows read from the store a test wrote, on either backend, by column name or position (like sqlite3.Row)."""

from __future__ import annotations

from typing import Any

from shared.core.settings import Settings
from shared.store.connection import is_postgres, open_store


class StoredRow(tuple):
    """A row readable as `row["name"]`, `row[0]` and `dict(row)`-like through `keys()`."""

    names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self.names


def store_rows(settings: Settings, sql: str, parameters: Any = (), cluster: str | None = None) -> list[StoredRow]:
    """The rows `sql` (SQLite's spelling, as the store writes it) returns from the store of `settings`."""
    conn = open_store(settings, cluster=cluster, migrate=False)
    try:
        cursor = conn.execute(sql, parameters)
        described = cursor.description or ()
        names = tuple(column[0] for column in described)
        rows = []
        for values in cursor.fetchall():
            row = StoredRow(values)
            row.names = names
            rows.append(row)
        return rows
    finally:
        conn.close()


def store_value(settings: Settings, sql: str, parameters: Any = (), cluster: str | None = None) -> Any:
    """The first column of the first row `sql` returns."""
    return store_rows(settings, sql, parameters, cluster)[0][0]


def foreign_key_violations(conn: Any) -> list:
    """SQLite's `PRAGMA foreign_key_check`; none on PostgreSQL, which refuses a violating write."""
    return [] if is_postgres(conn) else conn.execute("PRAGMA foreign_key_check").fetchall()


__all__ = ["StoredRow", "foreign_key_violations", "is_postgres", "store_rows", "store_value"]
