"""What the store asks of a connection, on either backend: the calls a sqlite3 connection answers.

SQLite files get a plain `sqlite3.Connection` (nothing between the store and SQLite: it stays as fast
as before); PostgreSQL gets shared/store/postgres.py's `PostgresConnection`, which answers the same
calls. Code that needs more (SQLite's PRAGMAs, PostgreSQL's COPY or catalog) asks
`shared.store.connection.is_postgres` and branches.
"""

from __future__ import annotations

from typing import Any, Protocol


class Connection(Protocol):
    """A store connection: `execute` and `executemany` take SQLite's SQL and `?` or `:name` parameters."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def close(self) -> None: ...
