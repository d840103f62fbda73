"""What each workload container requested and used over a report window, from the cheapest complete source.

The window is split into pieces, each read from one source, and their figures added per container:

- `raw`: the raw samples of a time range;
- `hourly`: hourly rollups (shared/store/retention.py), for hours whose raw samples may be deleted and
  hours that were never folded into day rows;
- `daily`: the day rows (shared/store/daily_rollups.py) of the days the window touches: the first and last
  day row of each container give every sum and the CPU histogram (running totals), the rows between
  only maxima;
- `unfolded`: the raw samples of the runs not folded into day rows yet (normally none, or the newest).

Windows of a day or more start at a UTC midnight, so whole day rows can serve them. Such a window is
read raw when every sample of it is still raw (it starts at or after the hourly watermark: nothing
of it was deleted) and there are at most RAW_WINDOW_MAX_SAMPLES of them, few enough to stay within
the report's time budget; otherwise from day rows. Shorter windows read raw samples, and hourly
rollups for what is no longer raw. The CPU percentile is exact when every piece is raw, else read
from log-bucket histograms (within 4.4 %). Every source counts usage from Running samples only and
the same figures, so only the percentile depends on the source. Each piece also says how long its
successful runs covered (shared/store/covered_time.py), read from beside the same rows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS, day_floor
from shared.store import daily_rollups
from shared.store import histograms as usage_histogram
from shared.store.connection import is_postgres
from shared.store.covered_time import CoveredTime, days_covered, hours_covered, runs_covered
from shared.store.daily_rollups import (
    SAMPLES_BY_RUN,
    coverage,
    hourly_watermark,
    larger,
    raw_usage,
    unfolded_runs_exist,
)
from shared.store.dialect import Connection

# About 0.1 s of reading raw samples on the 2-core test machine (benchmarks/report.py).
RAW_WINDOW_MAX_SAMPLES = 50_000

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(m|h|d|w)$")
_UNIT_SECONDS = {"m": 60, "h": HOUR_SECONDS, "d": DAY_SECONDS, "w": 7 * DAY_SECONDS}


class WindowError(ValueError):
    """A window text that cannot be used; the message says what would be accepted."""


@dataclass(frozen=True)
class Window:
    """[start, end) in Unix seconds; `label` is what the user asked for (`7d`)."""

    label: str
    start: int
    end: int
    whole_days: bool  # starts at a UTC midnight, so day rollups can serve it


def parse_window(text: str, now: float, max_days: float) -> Window:
    """`90m`, `24h`, `7d`, `2w`: up to `max_days` (the retention). A day or more starts at a UTC midnight."""
    match = _DURATION.match(text.strip())
    if not match:
        raise WindowError(f"{text!r} is not a duration like 24h, 7d or 2w")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise WindowError(f"{text!r} is empty; ask for at least 1m")
    if seconds > max_days * DAY_SECONDS:
        raise WindowError(f"{text!r} is longer than the stored history of {max_days:g} days")
    end = math.floor(now) + 1
    if seconds >= DAY_SECONDS:
        return Window(text.strip(), day_floor(now - seconds), end, whole_days=True)
    return Window(text.strip(), end - math.ceil(seconds), end, whole_days=False)


@dataclass(frozen=True)
class Selection:
    """Which workload containers: a namespace, and a workload as `name` or `Kind/name`."""

    namespace: str | None = None
    workload: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who a container is: its row id, namespace, owning workload and container name."""

    container_id: int
    namespace: str
    workload_kind: str
    workload_name: str
    container: str


@dataclass
class ContainerWindowUsage:
    """Sums and maxima of one workload container (every pod of it) over the window."""

    identity: Identity
    last_ts: int | None = None  # of the newest sample
    samples: int = 0
    cpu_request_millicores: int | None = None  # newest
    cpu_limit_millicores: int | None = None
    memory_request_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cpu_usage_samples: int = 0
    cpu_usage_sum_millicores: int = 0
    cpu_usage_max_millicores: int | None = None
    cpu_requested_sum_millicores: int = 0
    memory_working_set_samples: int = 0
    memory_working_set_sum_bytes: int = 0
    memory_working_set_max_bytes: int | None = None
    memory_requested_sum_bytes: int = 0
    cpu_throttled_ratio_max: float | None = None
    restart_count_max: int | None = None
    oom_events_sum: int = 0
    oom_killed_samples: int = 0  # samples whose last termination reason was OOMKilled
    # weighted by the window of each sample's run (shared/store/daily_rollups.py WEIGHTED)
    cpu_usage_pod_seconds: int = 0
    cpu_usage_millicore_seconds: float = 0.0
    cpu_requested_millicore_seconds: float = 0.0
    memory_working_set_pod_seconds: int = 0
    memory_working_set_byte_seconds: float = 0.0
    memory_requested_byte_seconds: float = 0.0
    cpu_histogram: int = 0  # from rollups (shared/store/histograms.py)
    cpu_values: list[int] = field(default_factory=list)  # from raw samples
    _percentiles: dict[float, float | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def cpu_percentile_exact(self) -> bool:
        """True when the CPU percentile comes from raw samples only, so it is exact, not histogram-estimated."""
        return self.cpu_histogram == 0

    def cpu_percentile_millicores(self, percent: float) -> float | None:
        """The CPU usage at `percent` (0 to 100), in millicores; None without samples. Kept once computed:
        sorting by it and explaining a row both ask."""
        if percent not in self._percentiles:
            if self.cpu_percentile_exact:
                value = usage_histogram.nearest_rank(sorted(self.cpu_values), percent)
            else:
                raw = usage_histogram.pack_values(self.cpu_values) if self.cpu_values else 0
                value = usage_histogram.percentile(self.cpu_histogram + raw, percent)
            self._percentiles[percent] = value
        return self._percentiles[percent]

    def add(self, piece: dict) -> None:
        """Add one source's figures (a dict with the day-row names) to this container's."""
        self._percentiles.clear()
        figures = vars(self)  # the fields by name: a report adds a piece per container and source
        if self.last_ts is None or piece["last_ts"] >= self.last_ts:
            for name in daily_rollups.LATEST:
                figures[name] = piece[name]
        self.last_ts = larger(self.last_ts, piece["last_ts"])
        for name in daily_rollups.SUMS:
            figures[name] += piece[name] or 0
        for name in daily_rollups.MAXIMA:
            figures[name] = larger(figures[name], piece[name])
        self.cpu_histogram += piece.get("cpu_histogram", 0)
        if "cpu_values" in piece:
            self.cpu_values.extend(piece["cpu_values"])


@dataclass
class WindowUsage:
    """Every selected container's usage, which sources the window was read from, and the time its
    successful runs covered (what averages over time divide by; 0 when none succeeded)."""

    window: Window
    containers: list[ContainerWindowUsage]
    sources: list[tuple[str, int, int]]  # (source, start, end) as planned by plan_sources
    covered: CoveredTime


def read_window_usage(conn: Connection, window: Window, selection: Selection = Selection()) -> WindowUsage:
    """Every selected container's usage over `window`, each piece of it read from the cheapest complete
    source, with the time the piece covered from the same source. The caller reads inside one snapshot
    (shared/store/snapshot.py): the pieces are planned from the state of the rollups."""
    identities = _identities(conn, selection)
    ids = None if selection == Selection() else sorted(identities)
    folded = coverage(conn)
    usage: dict[int, ContainerWindowUsage] = {}
    covered = CoveredTime()
    sources = plan_sources(conn, window)
    for source, start, end in sources:
        for container_id, piece in _read(conn, source, start, end, ids, folded).items():
            identity = identities.get(container_id)
            if identity is not None:
                usage.setdefault(container_id, ContainerWindowUsage(identity)).add(piece)
        covered.add(_covered(conn, source, start, end, folded))
    return WindowUsage(window, list(usage.values()), sources, covered)


def plan_sources(conn: Connection, window: Window) -> list[tuple[str, int, int]]:
    """The window as (source, start, end) pieces, [start, end) in Unix seconds, oldest first."""
    start, end = window.start, window.end
    watermark = hourly_watermark(conn)
    if window.whole_days and start >= watermark and _raw_samples_at_most(conn, start, end, RAW_WINDOW_MAX_SAMPLES):
        return [("raw", start, end)]
    folded = coverage(conn)
    if window.whole_days and folded is not None and folded.folded_from < end:
        pieces = [("hourly", start, folded.folded_from)] if start < folded.folded_from else []
        start = max(start, folded.folded_from)
        pieces.append(("daily", start, end))
        if unfolded_runs_exist(conn, folded):
            pieces.append(("unfolded", start, end))
        return pieces
    pieces = [("hourly", start, min(end, watermark))] if start < min(end, watermark) else []
    if max(start, watermark) < end:
        pieces.append(("raw", max(start, watermark), end))
    return pieces


def _raw_samples_at_most(conn: Connection, start: int, end: int, limit: int) -> bool:
    """Whether [start, end) holds at most `limit` raw samples; counts no further than limit + 1."""
    count = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {SAMPLES_BY_RUN} WHERE r.started_at >= ?"
                         " AND r.started_at < ? LIMIT ?)", (start, end, limit + 1)).fetchone()[0]
    return count <= limit


def _read(conn: Connection, source: str, start: int, end: int, ids: list[int] | None,
          folded: daily_rollups.Coverage | None) -> dict[int, dict]:
    if source == "daily":
        return _from_daily(conn, start, end, ids)
    if source == "hourly":
        return _from_hourly(conn, start, end, ids)
    return raw_usage(conn, start, end, ids,
                     after_run_id=folded.folded_run_id if folded and source == "unfolded" else None)


def _covered(conn: Connection, source: str, start: int, end: int,
             folded: daily_rollups.Coverage | None) -> dict[str, int]:
    if source == "daily":
        return days_covered(conn, day_floor(start), day_floor(end - 1))
    if source == "hourly":
        return hours_covered(conn, start, end)
    return runs_covered(conn, start, end,
                        after_run_id=folded.folded_run_id if folded and source == "unfolded" else None)


def _identities(conn: Connection, selection: Selection) -> dict[int, Identity]:
    kind, name = None, selection.workload
    if name and "/" in name:
        kind, name = name.split("/", 1)
    rows = conn.execute(
        "SELECT c.id, w.namespace, w.kind, w.name, c.name FROM containers c JOIN workloads w ON w.id = c.workload_id"
        " WHERE (:namespace IS NULL OR w.namespace = :namespace) AND (:name IS NULL OR w.name = :name)"
        " AND (:kind IS NULL OR lower(w.kind) = lower(:kind))",
        {"namespace": selection.namespace, "name": name, "kind": kind},
    )
    return {row[0]: Identity(*row) for row in rows}


# The rows between a container's first and last day of the window are read for the maxima only.
_DAILY_MAXIMA = f"""
SELECT c.id, {', '.join(f'MAX(d.{name})' for name in daily_rollups.MAXIMA)}
FROM containers c JOIN daily_rollups d ON d.container_id = c.id AND d.day BETWEEN :first AND :last
{{containers}} GROUP BY c.id
"""
_DAILY_EDGE = ("{edge}.day = (SELECT {pick}(day) FROM daily_rollups"
               " WHERE container_id = c.id AND day BETWEEN :first AND :last)")
_DAILY_EDGES = f"""
SELECT c.id, l.last_ts, {', '.join(f'l.{name}' for name in daily_rollups.LATEST)},
       {', '.join(f'l.{name}_cumulative - f.{name}_cumulative + f.{name}' for name in daily_rollups.SUMS)},
       f.cpu_usage_histogram, f.cpu_usage_histogram_cumulative, l.cpu_usage_histogram_cumulative
FROM containers c
JOIN daily_rollups f ON f.container_id = c.id AND {_DAILY_EDGE.format(edge="f", pick="MIN")}
JOIN daily_rollups l ON l.container_id = c.id AND {_DAILY_EDGE.format(edge="l", pick="MAX")}
{{containers}}
"""
_DAILY_EDGE_NAMES = ("last_ts", *daily_rollups.LATEST, *daily_rollups.SUMS)


def _from_daily(conn: Connection, start: int, end: int, ids: list[int] | None) -> dict[int, dict]:
    """The day rows of the days [start, end) touches: each sum is the last row's cumulative minus the
    first row's, plus the first row's own; maxima come from every row."""
    params: dict = {"first": day_floor(start), "last": day_floor(end - 1)}
    where = ""
    if ids is not None:
        where, params["ids"] = "WHERE c.id IN (SELECT value FROM json_each(:ids))", json.dumps(ids)
    maxima = {row[0]: dict(zip(daily_rollups.MAXIMA, row[1:]))
              for row in conn.execute(_DAILY_MAXIMA.format(containers=where), params).fetchall()}
    from_blob = usage_histogram.from_blob
    pieces = {}
    for cid, *values, own_histogram, first_histogram, last_histogram in conn.execute(
            _DAILY_EDGES.format(containers=where), params).fetchall():
        piece = dict(zip(_DAILY_EDGE_NAMES, values))
        piece.update(maxima[cid])
        piece["cpu_histogram"] = from_blob(last_histogram) - from_blob(first_histogram) + from_blob(own_histogram)
        pieces[cid] = piece
    return pieces


# An hourly rollup has the figures of a day row under the same names.
_HOURLY_AGGREGATES = f"""
SELECT container_id, MAX(last_ts), {', '.join(f'SUM({name})' for name in daily_rollups.SUMS)},
       {', '.join(f'MAX({name})' for name in daily_rollups.MAXIMA)}
FROM hourly_rollups WHERE hour >= :start AND hour < :end {{containers}} GROUP BY container_id
"""
# SQLite takes the bare columns from the row holding MAX(last_ts): the newest requests and limits.
_HOURLY_LATEST = f"""
SELECT container_id, MAX(last_ts), {', '.join(daily_rollups.LATEST)}
FROM hourly_rollups WHERE hour >= :start AND hour < :end {{containers}} GROUP BY container_id
"""
_HOURLY_LATEST_POSTGRES = f"""
SELECT DISTINCT ON (container_id) container_id, last_ts, {', '.join(daily_rollups.LATEST)}
FROM hourly_rollups WHERE hour >= :start AND hour < :end {{containers}} ORDER BY container_id, last_ts DESC
"""
_HOURLY_HISTOGRAMS = """
SELECT container_id, cpu_usage_histogram FROM hourly_rollups
WHERE hour >= :start AND hour < :end AND cpu_usage_histogram IS NOT NULL {containers}
"""


def _from_hourly(conn: Connection, start: int, end: int, ids: list[int] | None) -> dict[int, dict]:
    """The rollups of the hours starting in [start, end)."""
    params: dict = {"start": start, "end": end}
    where = ""
    if ids is not None:
        where, params["ids"] = "AND container_id IN (SELECT value FROM json_each(:ids))", json.dumps(ids)
    names = ("last_ts", *daily_rollups.SUMS, *daily_rollups.MAXIMA)
    pieces = {row[0]: {**dict(zip(names, row[1:])), "cpu_histogram": 0}
              for row in conn.execute(_HOURLY_AGGREGATES.format(containers=where), params)}
    latest = _HOURLY_LATEST_POSTGRES if is_postgres(conn) else _HOURLY_LATEST
    for cid, _, *requests in conn.execute(latest.format(containers=where), params):
        pieces[cid].update(zip(daily_rollups.LATEST, requests))
    for cid, blob in conn.execute(_HOURLY_HISTOGRAMS.format(containers=where), params):
        pieces[cid]["cpu_histogram"] += usage_histogram.from_blob(blob)
    return pieces
