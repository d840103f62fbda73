"""The fleet: one row per cluster sharing the store, stale clusters first.

Each row is that cluster's report totals over the window (requested, used, idle CPU and memory, the
number of containers per risk flag, idle cost and savings a month) and when its last collection
succeeded. A cluster whose last success is older than ALERT_STALE_INTERVALS collection intervals is
stale, listed first: its figures are out of date. On SQLite the store holds one cluster
(CLUSTER_NAME); on PostgreSQL every cluster that wrote to the database (shared/store/postgres.py).
A cluster's totals are read as one of its collections stored them (every FLEET_REFRESH_MINUTES;
shared/domain/report/stored_totals.py), and computed as its report does when none did for the window.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import urlencode

from shared.core.settings import Settings
from shared.domain.report.build import build_report
from shared.domain.report.figures import Totals
from shared.domain.report.query import ReportQuery
from shared.domain.report.stored_totals import stored_window_totals
from shared.store.connection import StoreError, open_store, store_clusters
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN
from shared.store.snapshot import read_snapshot
from shared.store.window_usage import Selection

log = logging.getLogger(__name__)

FLEET_WORKERS = 4


@dataclass(frozen=True)
class ClusterRow:
    """One cluster of the fleet: its totals over the window and its last successful collection."""

    cluster: str
    totals: Totals
    last_successful_collection: float | None  # Unix seconds; None: never
    stale: bool
    error: str | None = None  # its schema could not be read
    totals_computed_at: float | None = None  # by one of its collections, or when the fleet was asked

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, **asdict(self.totals), "last_successful_collection":
                self.last_successful_collection, "stale": self.stale, "error": self.error,
                "totals_computed_at": self.totals_computed_at}


@dataclass(frozen=True)
class FleetReport:
    query: ReportQuery
    generated_at: float
    currency: str  # of every cluster's money (CURRENCY)
    clusters: list[ClusterRow] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The fleet JSON: the window, and one row per cluster (stale ones first)."""
        return {"window": {"label": self.query.window.label, "start": self.query.window.start,
                           "end": self.query.window.end},
                "generated_at": self.generated_at, "currency": self.currency,
                "clusters": [row.as_dict() for row in self.clusters]}


def build_fleet(settings: Settings, query: ReportQuery, now: float | None = None) -> FleetReport:
    """Every cluster's row over the query's window and filters, stale clusters first, then by name."""
    now = time.time() if now is None else now
    stale_after = settings.alert_stale_intervals * settings.collect_interval_seconds
    names = store_clusters(settings)
    # Each cluster on a connection of its own, a few at once: the server computes one while Python
    # reads another's answer.
    with ThreadPoolExecutor(min(FLEET_WORKERS, max(1, len(names))), thread_name_prefix="fleet") as pool:
        rows = list(pool.map(lambda name: _cluster_row(settings, name, query, now, stale_after), names))
    rows.sort(key=lambda row: (not row.stale, row.cluster))
    return FleetReport(query, now, settings.currency, rows)


def _cluster_row(settings: Settings, name: str, query: ReportQuery, now: float, stale_after: float) -> ClusterRow:
    mine = settings.model_copy(update={"cluster_name": name})
    try:
        conn = open_store(mine, readonly=True)
    except (StoreError, sqlite3.Error) as exc:
        return ClusterRow(name, Totals(), None, True, str(exc))
    try:
        stored = _stored(conn, name, query, mine)
        with read_snapshot(conn):
            totals, computed_at = stored or (build_report(conn, replace(query, limit=0), mine, now).cluster, now)
            last = conn.execute(f"SELECT MAX(finished_at) FROM runs WHERE {SUCCESSFUL_RUN}").fetchone()[0]
    except sqlite3.Error as exc:
        return ClusterRow(name, Totals(), None, True, str(exc))
    finally:
        conn.close()
    return ClusterRow(name, totals, last, last is None or now - last > stale_after, totals_computed_at=computed_at)


def _stored(conn: Connection, name: str, query: ReportQuery, settings: Settings) -> tuple[Totals, float] | None:
    """The cluster's stored totals for an unfiltered query. Unreadable ones (a reporting role granted SELECT
    before an upgrade added their table) are computed instead: read outside the snapshot, the failed
    statement leaves the connection usable."""
    if query.selection != Selection():
        return None
    try:
        return stored_window_totals(conn, query.window, settings)
    except sqlite3.Error as exc:
        log.warning("cluster %s: its stored fleet totals could not be read (%s); computing them. Grant this role "
                    "SELECT on the table", name, exc)
        return None


def render_fleet_page(fleet: FleetReport) -> str:
    """The fleet as the report page's table (same stylesheet), each cluster linking to its own report."""
    from shared.core.templates import render
    from shared.domain.report.assets import page_stylesheet
    from shared.domain.report.extras import format_money
    from shared.domain.report.flags import FLAG_LABELS

    links = {row.cluster: f"?{urlencode({'cluster': row.cluster, 'window': fleet.query.window.label})}"
             for row in fleet.clusters}
    return render("shared.domain.report", "fleet.html", fleet=fleet, window=fleet.query.window, links=links,
                  flag_labels=FLAG_LABELS, stylesheet=page_stylesheet(),
                  money=lambda amount: format_money(amount, fleet.currency))
