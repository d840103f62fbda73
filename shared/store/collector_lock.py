"""One collector per cluster at a time, on either backend.

SQLite: a file lock beside the database (one machine; the Lease guards other nodes). PostgreSQL: a
session advisory lock of the cluster on the server, so collectors on any node, of any cluster, meet
at the one place they all write; the server drops it with the session when a collector dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.database_url import PostgresTarget
from shared.core.locking import try_file_lock

if TYPE_CHECKING:
    from shared.core.settings import Settings


def collector_lock(settings: Settings) -> AbstractContextManager[bool]:
    """True while this process is the cluster's collector, False at once if another one is.

    Raises sqlite3.OperationalError naming the server when PostgreSQL cannot be reached."""
    return cluster_lock(settings, "collector", settings.lock_path)


@contextmanager
def cluster_lock(settings: Settings, purpose: str, lock_file: Path) -> Iterator[bool]:
    """True while this process holds the cluster's lock for `purpose` (`lock_file` on SQLite)."""
    target = settings.database
    if not isinstance(target, PostgresTarget):
        with try_file_lock(lock_file) as held:
            yield held
        return
    from shared.store.postgres import PostgresConnection, open_raw

    conn = PostgresConnection(open_raw(target), target, settings.cluster_name)
    try:
        yield conn.try_session_lock(purpose)
    finally:
        conn.close()  # ends the session, and with it the lock
