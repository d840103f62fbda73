"""The fleet's rows computed ahead: the collections store their cluster's report totals, and the fleet
view reads one row per cluster instead of assessing every container of every cluster.

Computing a cluster's totals costs about as much as its report (10,000 pods: seconds of CPU), so a
collection does it only when the stored ones are FLEET_REFRESH_MINUTES old (60 by default; 0: every
collection), for REPORT_WINDOW_DAYS (the fleet's default window) and each of FLEET_WINDOW_DAYS. These
are whole-day windows: they start at a UTC midnight, so a row serves until the next day's windows.
A row is as of the collection that computed it, and the fleet says when: an hour of runs moves a
week's averages little, but what changed since (a new workload, a new risk flag) shows at the next
refresh, and at once in the cluster's own report. A window shorter than a day slides every second,
so it is computed when asked, as are other windows, filtered queries and readers whose report
settings differ from the collector's (they are in the digest the rows are stored under).
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
from shared.store.report_totals import StoredTotals, keep_windows, store_totals, stored_totals
from shared.store.window_usage import Window, parse_window

log = logging.getLogger(__name__)

# Settings that do not change a cluster's totals over a given window (only the default window, the
# change impacts of listed containers and the group totals), left out of the digest so a reader
# that differs in them still uses the stored rows.
NOT_IN_TOTALS = frozenset({"report_window_days", "report_change_window_hours", "report_group_by_label"})
ALSO_IN_TOTALS = ("currency", "alert_cpu_throttled_ratio", "alert_memory_near_limit_ratio", "collect_interval_seconds")


def settings_digest(settings: Settings) -> str:
    """A digest of the code's version and every setting that shapes a cluster's totals: the report's,
    the prices, the risk flags' thresholds and the collection interval (recommendations' confidence)."""
    names = [name for name in type(settings).model_fields
             if (name.startswith(("report_", "price_")) and name not in NOT_IN_TOTALS) or name in ALSO_IN_TOTALS]
    shaping = json.dumps([__version__, {name: getattr(settings, name) for name in sorted(names)}], default=str)
    return hashlib.sha256(shaping.encode()).hexdigest()[:16]


def stored_window_totals(conn: Connection, window: Window, settings: Settings) -> tuple[Totals, float] | None:
    """The cluster's totals over `window` as a collection stored them with these settings, and when it
    computed them; None if none did."""
    if not window.whole_days:
        return None
    stored = stored_totals(conn, window.start, settings_digest(settings))
    return None if stored is None else (msgspec.json.decode(stored.totals, type=Totals), stored.computed_at)


def fleet_windows(settings: Settings, now: float) -> list[Window]:
    """The windows the collections store totals for: REPORT_WINDOW_DAYS if whole days, and
    FLEET_WINDOW_DAYS, those the retained history can hold."""
    max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    days = {*settings.fleet_window_days}
    if settings.report_window_days.is_integer():
        days.add(int(settings.report_window_days))
    return [parse_window(f"{count}d", now, max_days) for count in sorted(days) if count <= max_days]


def refresh_fleet_totals(settings: Settings, now: float | None = None, budget_seconds: float | None = None) -> int:
    """Compute and store this cluster's totals over each fleet window whose stored ones are missing or
    FLEET_REFRESH_MINUTES old; how many were stored. Run after a successful collection (and its
    retention pass), within `budget_seconds`: a window whose last computation took longer than the
    time left waits for a later collection. A problem is logged, never raised, and only costs the
    fleet view the time to compute the totals itself until a later collection stores them."""
    now = time.time() if now is None else now
    started = time.perf_counter()
    digest, windows, stored = settings_digest(settings), fleet_windows(settings, now), 0
    try:
        conn = open_store(settings)
        try:
            for window in windows:
                last = stored_totals(conn, window.start, digest)
                if last is not None and now - last.computed_at < settings.fleet_refresh_minutes * 60:
                    continue
                left = None if budget_seconds is None else budget_seconds - (time.perf_counter() - started)
                if left is not None and left <= (0 if last is None else last.compute_seconds):
                    log.info("fleet totals over %s not refreshed: %.1fs left in this invocation; a later "
                             "collection refreshes them", window.label, max(0.0, left))
                    break
                computing = time.perf_counter()
                totals = build_report(conn, ReportQuery(window, limit=0), settings, now).cluster
                with transaction(conn):
                    store_totals(conn, window.start, digest, StoredTotals(
                        msgspec.json.encode(totals).decode(), now, time.perf_counter() - computing))
                stored += 1
            if stored:
                with transaction(conn):
                    keep_windows(conn, [window.start for window in windows])
        finally:
            conn.close()
    except (StoreError, sqlite3.Error) as exc:
        log.error("fleet totals not refreshed: %s; the fleet view computes them until a later collection", exc)
        return stored
    if stored:
        log.info("fleet totals refreshed for %d window(s) in %.2fs", stored, time.perf_counter() - started)
    return stored
