"""The fleet's rows computed ahead: each collection stores its cluster's report totals, and the fleet
view reads one row per cluster instead of assessing every container of every cluster.

A collection stores the totals over REPORT_WINDOW_DAYS (the fleet's default window) and over each of
FLEET_WINDOW_DAYS, whole-day windows: they start at a UTC midnight, so they hold the same data until
the next run (shared/store/report_totals.py says what else their state holds). A window shorter than
a day slides every second, so it is computed when asked. A row is used only by a reader whose report
settings are the collector's (they are fingerprinted into the state, with the code's version);
otherwise, and for filtered queries, the fleet computes the totals as a report does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time

import msgspec

from shared import __version__
from shared.core.settings import Settings
from shared.domain.report.build import build_report
from shared.domain.report.figures import Totals
from shared.domain.report.query import ReportQuery
from shared.store.connection import StoreError, open_store, transaction
from shared.store.dialect import Connection
from shared.store.report_totals import replace_totals, stored_totals, window_state
from shared.store.snapshot import read_snapshot
from shared.store.window_usage import Window, parse_window

log = logging.getLogger(__name__)

# Settings that do not change a cluster's totals over a given window (only the default window, the
# change impacts of listed containers and the group totals), left out of the fingerprint so a
# reader that differs in them still uses the stored rows.
NOT_IN_TOTALS = frozenset({"report_window_days", "report_change_window_hours", "report_group_by_label"})
ALSO_IN_TOTALS = ("currency", "alert_cpu_throttled_ratio", "alert_memory_near_limit_ratio", "collect_interval_seconds")


def settings_fingerprint(settings: Settings) -> str:
    """A digest of the code's version and every setting that shapes a cluster's totals: the report's,
    the prices, the risk flags' thresholds and the collection interval (recommendations' confidence)."""
    names = [name for name in type(settings).model_fields
             if (name.startswith(("report_", "price_")) and name not in NOT_IN_TOTALS) or name in ALSO_IN_TOTALS]
    shaping = json.dumps([__version__, {name: getattr(settings, name) for name in sorted(names)}], default=str)
    return hashlib.sha256(shaping.encode()).hexdigest()[:16]


def stored_window_totals(conn: Connection, window: Window, settings: Settings) -> tuple[Totals, float] | None:
    """The cluster's stored totals over `window` and when they were computed, if they are what a
    report would compute now with `settings`; None otherwise. In the caller's snapshot."""
    if not window.whole_days:
        return None
    stored = stored_totals(conn, window.start,
                           window_state(conn, window.start, window.end, settings_fingerprint(settings)))
    return None if stored is None else (msgspec.json.decode(stored[0], type=Totals), stored[1])


def fleet_windows(settings: Settings, now: float) -> list[Window]:
    """The windows a collection stores totals for: REPORT_WINDOW_DAYS if whole days, and FLEET_WINDOW_DAYS,
    those the retained history can hold."""
    max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    days = {*settings.fleet_window_days}
    if settings.report_window_days.is_integer():
        days.add(int(settings.report_window_days))
    return [parse_window(f"{count}d", now, max_days) for count in sorted(days) if count <= max_days]


def store_fleet_totals(settings: Settings, now: float | None = None, budget_seconds: float | None = None) -> int:
    """Compute and store this cluster's totals over each fleet window; how many were stored. Run after a
    successful collection (and its retention pass): a problem is logged, never raised, and only costs
    the fleet view the time to compute the totals itself until the next collection."""
    now = time.time() if now is None else now
    started = time.perf_counter()
    if budget_seconds is not None and budget_seconds <= 0:
        log.info("fleet totals not stored: no time left in this invocation; the next collection stores them")
        return 0
    try:
        conn = open_store(settings)
    except (StoreError, sqlite3.Error) as exc:
        log.error("fleet totals not stored: %s; the fleet view computes them until the next collection", exc)
        return 0
    try:
        fingerprint, rows = settings_fingerprint(settings), []
        with read_snapshot(conn):  # every window, and the state each is stored with, from one state
            for window in fleet_windows(settings, now):
                if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
                    log.info("fleet totals: no time left in this invocation for the %s window", window.label)
                    break
                report = build_report(conn, ReportQuery(window, limit=0), settings, now)
                rows.append((window.start, window_state(conn, window.start, window.end, fingerprint),
                             msgspec.json.encode(report.cluster).decode(), now))
        with transaction(conn):
            replace_totals(conn, rows)
    except (StoreError, sqlite3.Error) as exc:
        log.error("fleet totals not stored: %s; the fleet view computes them until the next collection", exc)
        return 0
    finally:
        conn.close()
    log.info("fleet totals stored for %d window(s) in %.2fs", len(rows), time.perf_counter() - started)
    return len(rows)

