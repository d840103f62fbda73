"""One read transaction: every read inside it sees the database as one committed state.

A report reads many tables one query after another (which runs are folded, the day rows, the
unfolded runs, the charts' samples). In autocommit mode each query would see the newest commit,
so a fold or a retention pass committing in between could count a run twice or show charts of
other samples than the figures. In WAL mode a read transaction keeps its snapshot from its first
read to its end without blocking writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.store.dialect import Connection


@contextmanager
def read_snapshot(conn: Connection) -> Iterator[Connection]:
    """Read inside one (deferred) transaction; within a transaction already open, that one is it."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")
