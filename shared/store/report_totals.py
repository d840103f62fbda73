"""A cluster's report totals over whole-day windows, stored with the state they were computed from.

The fleet view shows every cluster's totals, and computing one means assessing every container of
the cluster: a fleet of 20 clusters of 5,000 containers takes seconds. Each collection computes its
own cluster's after its run (shared/domain/report/stored_totals.py) and stores them here with their
state: what a report over the window reads. A reader uses a row only when the state it reads now is
the stored one, so a stored row is exactly what computing the totals again would give.

The state of a whole-day window's reads: its start (a UTC midnight, fixed all day), the newest
successful run started before its end (runs only add to the window by a new, higher id; a late run
too), how far the day rows and hourly rollups reach (retention folds and rolls up between runs,
which changes which source a window reads), and what the caller adds (the settings and code that
shape the figures).
"""

from __future__ import annotations

import json

from shared.store.daily_rollups import coverage, hourly_watermark
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN


def window_state(conn: Connection, window_start: int, window_end: int, shaped_by: str) -> str:
    """The state a report over [window_start, window_end) reads now, with `shaped_by` (the caller's
    fingerprint of what else decides the figures). Read it in the report's snapshot."""
    newest_run = conn.execute(f"SELECT MAX(id) FROM runs WHERE {SUCCESSFUL_RUN} AND started_at < ?",
                              (window_end,)).fetchone()[0]
    folded = coverage(conn)
    folds = None if folded is None else [folded.folded_from, folded.folded_run_id]
    return json.dumps([window_start, newest_run, folds, hourly_watermark(conn), shaped_by], separators=(",", ":"))


def stored_totals(conn: Connection, window_start: int, state: str) -> tuple[str, float] | None:
    """(totals JSON, when computed) stored for the window starting at `window_start` in `state`; None:
    none stored, or stored from another state."""
    row = conn.execute("SELECT totals, computed_at FROM report_totals WHERE window_start = ? AND state = ?",
                       (window_start, state)).fetchone()
    return None if row is None else (row[0], row[1])


def replace_totals(conn: Connection, rows: list[tuple[int, str, str, float]]) -> None:
    """Store (window start, state, totals JSON, computed at) rows in place of every stored one (other
    days' windows are of no use any more). The caller's transaction."""
    conn.execute("DELETE FROM report_totals")
    conn.executemany("INSERT INTO report_totals (window_start, state, totals, computed_at) VALUES (?, ?, ?, ?)", rows)
