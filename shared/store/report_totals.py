"""A cluster's report totals over whole-day windows, as its collections last computed them.

The fleet view shows every cluster's totals, and computing one means assessing every container of
the cluster: a fleet of 20 clusters of 5,000 containers takes seconds. The collections compute their
own cluster's now and then (shared/domain/report/stored_totals.py) and store them here, one row per
window, keyed by the window's start (a UTC midnight: a new day's windows are new rows) and with a
digest of what else shaped them (the settings and the code's version), so a reader with other
settings does not take them for its own.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from shared.store.dialect import Connection


class StoredTotals(NamedTuple):
    totals: str  # JSON
    computed_at: float  # Unix seconds
    compute_seconds: float  # how long computing them took


def stored_totals(conn: Connection, window_start: int, shaped_by: str) -> StoredTotals | None:
    """The totals of the window starting at `window_start`, computed with `shaped_by`; None if none are."""
    row = conn.execute("SELECT totals, computed_at, compute_seconds FROM report_totals"
                       " WHERE window_start = ? AND shaped_by = ?", (window_start, shaped_by)).fetchone()
    return None if row is None else StoredTotals(*row)


def store_totals(conn: Connection, window_start: int, shaped_by: str, stored: StoredTotals) -> None:
    """Store the totals of the window starting at `window_start` in place of any stored for it."""
    conn.execute("DELETE FROM report_totals WHERE window_start = ?", (window_start,))
    conn.execute("INSERT INTO report_totals (window_start, shaped_by, totals, computed_at, compute_seconds)"
                 " VALUES (?, ?, ?, ?, ?)", (window_start, shaped_by, *stored))


def keep_windows(conn: Connection, window_starts: list[int]) -> None:
    """Delete the totals of every other window (earlier days', or windows no longer asked for)."""
    conn.execute("DELETE FROM report_totals WHERE window_start NOT IN (SELECT value FROM json_each(?))",
                 (json.dumps(window_starts),))
