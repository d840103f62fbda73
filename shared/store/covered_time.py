"""The time collections covered: what averages over time divide by.

Each successful run covers the `window_seconds` before it (the usage window it asked Prometheus
about); a gap between runs, and a failed or skipped run, covers nothing. So a report asked an hour
after the last collection gives the same averages as one asked right after it, and a cluster that
requests the same at every run is reported as requesting that.

A run covers only the namespaces of its scope (runs.namespaces; every namespace when empty), so
the time is kept per scope and a namespace's time is that of every scope holding it. It is read
from where the samples of each piece of a report window are: the runs rows for raw samples,
`hourly_coverage` beside the hourly rollups (written by shared/store/retention.py with each hour)
and `daily_coverage` beside the day rows (folded with them by shared/store/daily_rollups.py), so
retention never deletes the samples of a time without the time, or the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN

EVERY_NAMESPACE = ""  # the scope of runs that collected every namespace

_SUCCESSFUL = f"{SUCCESSFUL_RUN} AND window_seconds IS NOT NULL"
# ts of a sample = its run's started_at, truncated: the hour and day of a run are those of its samples
_BY_PERIOD = f"""
SELECT CAST(started_at AS INTEGER) / :period * :period, COALESCE(namespaces, ''), SUM(window_seconds) FROM runs
WHERE {_SUCCESSFUL} AND {{runs}} GROUP BY 1, 2
"""


@dataclass
class CoveredTime:
    """Seconds covered by successful runs, per scope of namespaces (comma-separated; '' for every one)."""

    seconds_by_scope: dict[str, int] = field(default_factory=dict)
    _by_namespace: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # seconds_for, kept

    def add(self, seconds_by_scope: dict[str, int]) -> None:
        """Count another piece of the window in."""
        self._by_namespace.clear()
        for scope, seconds in seconds_by_scope.items():
            self.seconds_by_scope[scope] = self.seconds_by_scope.get(scope, 0) + seconds

    def seconds_for(self, namespace: str) -> int:
        """The seconds that runs collecting `namespace` covered (asked for every container of a report)."""
        found = self._by_namespace.get(namespace)
        if found is None:
            found = self._by_namespace[namespace] = sum(
                seconds for scope, seconds in self.seconds_by_scope.items()
                if scope == EVERY_NAMESPACE or namespace in scope.split(","))
        return found

    @property
    def seconds(self) -> int:
        """The longest time any namespace was covered: the window's time with data; 0 for none."""
        named = {namespace for scope in self.seconds_by_scope if scope for namespace in scope.split(",")}
        return max((self.seconds_for(namespace) for namespace in named),
                   default=self.seconds_by_scope.get(EVERY_NAMESPACE, 0))


def runs_covered(conn: Connection, start: int, end: int, after_run_id: int | None = None) -> dict[str, int]:
    """Seconds per scope of the successful runs started in [start, end) (those with a larger id
    than `after_run_id` only, when given: the runs not folded into day rows yet)."""
    params: dict = {"start": start, "end": end, "after": after_run_id}
    where = "started_at >= :start AND started_at < :end" + ("" if after_run_id is None else " AND id > :after")
    return dict(conn.execute(
        f"SELECT COALESCE(namespaces, ''), SUM(window_seconds) FROM runs WHERE {_SUCCESSFUL} AND {where} GROUP BY 1",
        params).fetchall())


def hours_covered(conn: Connection, start: int, end: int) -> dict[str, int]:
    """Seconds per scope of the rolled-up hours starting in [start, end)."""
    return dict(conn.execute("SELECT namespaces, SUM(covered_seconds) FROM hourly_coverage"
                             " WHERE hour >= ? AND hour < ? GROUP BY 1", (start, end)).fetchall())


def days_covered(conn: Connection, first_day: int, last_day: int) -> dict[str, int]:
    """Seconds per scope of the folded days from `first_day` to `last_day`, both included."""
    return dict(conn.execute("SELECT namespaces, SUM(covered_seconds) FROM daily_coverage"
                             " WHERE day BETWEEN ? AND ? GROUP BY 1", (first_day, last_day)).fetchall())


def record_hours(conn: Connection, start: int, end: int) -> None:
    """Keep the time of the runs started in [start, end) per hour, as their hours are rolled up (in the
    caller's transaction). Hours of runs without samples are kept too: they covered time as well."""
    conn.execute(
        "INSERT INTO hourly_coverage (hour, namespaces, covered_seconds) "
        + _BY_PERIOD.format(runs="started_at >= :start AND started_at < :end")
        + " ON CONFLICT (hour, namespaces) DO UPDATE SET"
          " covered_seconds = hourly_coverage.covered_seconds + excluded.covered_seconds",
        {"period": HOUR_SECONDS, "start": start, "end": end})


def fold_days(conn: Connection, after_run_id: int, last_run_id: int, folded_from: int) -> None:
    """Add the time of the runs after `after_run_id` up to `last_run_id`, started at or after
    `folded_from`, to their days (in the fold's transaction, as their samples are added)."""
    conn.execute(
        "INSERT INTO daily_coverage (day, namespaces, covered_seconds) "
        + _BY_PERIOD.format(runs="id > :after AND id <= :last AND started_at >= :from")
        + " ON CONFLICT (day, namespaces) DO UPDATE SET"
          " covered_seconds = daily_coverage.covered_seconds + excluded.covered_seconds",
        {"period": DAY_SECONDS, "after": after_run_id, "last": last_run_id, "from": folded_from})
