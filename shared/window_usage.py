"""What each workload container requested and used over a report window, from the cheapest complete source.

The window is split into pieces, each read from one source, and their figures added per container:

- days folded into `daily_rollups` (shared/daily_rollups.py): the first and last day row of each
  container give every sum and the CPU histogram (cumulative columns), the rows between only maxima;
- hours before the raw samples' horizon (the hourly watermark): `hourly_rollups` (shared/retention.py);
- everything else, normally the samples stored since the last fold: raw `samples`.

Windows of a day or more start at a UTC midnight (so whole day rows can be used): `7d` is the last
seven full days plus today so far. Shorter windows are exact and read raw samples only. The CPU
percentile is exact when every piece is raw, else read from log-bucket histograms (within 4.4 %).
Usage figures count Running samples only (the hourly rollups count every phase's usage; pods that
are not Running rarely report any).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass, field

from shared import daily_rollups, packed_histogram
from shared.daily_rollups import DAY_SECONDS, HOUR_SECONDS, coverage, day_floor, hourly_watermark, raw_usage

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
    container_id: int
    namespace: str
    workload_kind: str
    workload_name: str
    container: str


@dataclass
class ContainerUsage:
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
    oom_killed_samples: int = 0  # samples (hours, from hourly rollups) whose last termination was OOMKilled
    cpu_histogram: int = 0  # packed (shared/packed_histogram.py), from rollups
    cpu_values: list[int] = field(default_factory=list)  # from raw samples

    @property
    def cpu_percentile_exact(self) -> bool:
        return self.cpu_histogram == 0

    def cpu_percentile_millicores(self, percent: float) -> float | None:
        if self.cpu_percentile_exact:
            return nearest_rank(sorted(self.cpu_values), percent)
        raw = packed_histogram.pack_values(self.cpu_values) if self.cpu_values else 0
        return packed_histogram.percentile(self.cpu_histogram + raw, percent)

    def add(self, piece: dict) -> None:
        """Add one source's figures (a dict with the day-row names) to this container's."""
        if self.last_ts is None or piece["last_ts"] >= self.last_ts:
            for name in daily_rollups.LATEST:
                setattr(self, name, piece[name])
        self.last_ts = _max(self.last_ts, piece["last_ts"])
        for name in daily_rollups.SUMS:
            setattr(self, name, getattr(self, name) + (piece[name] or 0))
        for name in daily_rollups.MAXIMA:
            setattr(self, name, _max(getattr(self, name), piece[name]))
        self.cpu_histogram += piece.get("cpu_histogram", 0)
        self.cpu_values.extend(piece.get("cpu_values", ()))


@dataclass
class WindowUsage:
    """Every selected container's usage, and which sources the window was read from."""

    window: Window
    containers: list[ContainerUsage]
    sources: list[tuple[str, int, int]]  # (source, start, end) as planned by plan_sources
    data_start: int  # where the usage of the window's first successful collection starts (or the window's)

    @property
    def span_seconds(self) -> int:
        """The part of the window with data, whatever the selection: averages over time divide by it.
        It ends now (the window's end) and starts with the first collection's usage window."""
        return max(1, self.window.end - 1 - self.data_start)


def read_window_usage(conn: sqlite3.Connection, window: Window, selection: Selection = Selection()) -> WindowUsage:
    identities = _identities(conn, selection)
    ids = None if selection == Selection() else sorted(identities)
    usage: dict[int, ContainerUsage] = {}
    sources = plan_sources(conn, window)
    for source, start, end in sources:
        for container_id, piece in _READERS[source](conn, start, end, ids).items():
            identity = identities.get(container_id)
            if identity is not None:
                usage.setdefault(container_id, ContainerUsage(identity)).add(piece)
    first_run = conn.execute(
        "SELECT started_at - COALESCE(window_seconds, 0) FROM runs WHERE status IN ('ok', 'partial')"
        " AND started_at >= ? ORDER BY started_at LIMIT 1", (window.start,)).fetchone()
    data_start = window.start if first_run is None else max(window.start, math.floor(first_run[0]))
    return WindowUsage(window, list(usage.values()), sources, data_start)


def plan_sources(conn: sqlite3.Connection, window: Window) -> list[tuple[str, int, int]]:
    """The window as (source, start, end) pieces, [start, end) in Unix seconds, oldest first: `hourly`
    (whole hours), `daily` (the day rows of the days it touches hold exactly its samples) or `raw`."""
    pieces: list[tuple[str, int, int]] = []
    start, end = window.start, window.end
    watermark = hourly_watermark(conn)
    folded = coverage(conn)
    if window.whole_days and folded and max(start, folded.folded_from) < min(end, folded.folded_until):
        # Folding starts at the hourly watermark or at the first sample: before it, only hours that
        # end by then hold samples the day rows do not.
        before = _hour_floor(min(folded.folded_from, watermark))
        if start < before:
            pieces.append(("hourly", start, before))
        pieces.append(("daily", max(start, folded.folded_from), min(end, folded.folded_until)))
        start = min(end, folded.folded_until)
        if start < watermark:  # rolled up and deleted unfolded (the next fold starts over): whole hours only
            start = -(-start // HOUR_SECONDS) * HOUR_SECONDS
    if start < min(end, watermark):
        pieces.append(("hourly", start, min(end, watermark)))
    if max(start, watermark) < end:
        pieces.append(("raw", max(start, watermark), end))
    return pieces


def _identities(conn: sqlite3.Connection, selection: Selection) -> dict[int, Identity]:
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


def _containers_clause(ids: list[int] | None, params: list) -> str:
    if ids is None:
        return ""
    params.append(json.dumps(ids))
    return "AND container_id IN (SELECT value FROM json_each(?))"


# The rows between a container's first and last day of the window are read for the maxima only.
_DAILY_MAXIMA = f"""
SELECT c.id, {', '.join(f'MAX(d.{name})' for name in daily_rollups.MAXIMA)}
FROM containers c JOIN daily_rollups d ON d.container_id = c.id AND d.day BETWEEN :first AND :last
{{containers}} GROUP BY c.id
"""
_DAILY_EDGE = "{edge}.day = (SELECT {pick}(day) FROM daily_rollups WHERE container_id = c.id AND day BETWEEN :first AND :last)"
_DAILY_EDGES = f"""
SELECT c.id, l.last_ts, {', '.join(f'l.{name}' for name in daily_rollups.LATEST)},
       {', '.join(f'f.{name}' for name in daily_rollups.SUMS)}, f.cpu_usage_histogram,
       {', '.join(f'f.{name}' for name in daily_rollups.CUMULATIVE)},
       {', '.join(f'l.{name}' for name in daily_rollups.CUMULATIVE)}
FROM containers c
JOIN daily_rollups f ON f.container_id = c.id AND {_DAILY_EDGE.format(edge="f", pick="MIN")}
JOIN daily_rollups l ON l.container_id = c.id AND {_DAILY_EDGE.format(edge="l", pick="MAX")}
{{containers}}
"""


def _from_daily(conn: sqlite3.Connection, start: int, end: int, ids: list[int] | None) -> dict[int, dict]:
    """The day rows of the days [start, end) touches: each sum is the last row's cumulative minus the
    first row's, plus the first row's own; maxima come from every row."""
    params: dict = {"first": day_floor(start), "last": day_floor(end - 1)}
    where = ""
    if ids is not None:
        where, params["ids"] = "WHERE c.id IN (SELECT value FROM json_each(:ids))", json.dumps(ids)
    maxima = {row[0]: row[1:] for row in conn.execute(_DAILY_MAXIMA.format(containers=where), params)}
    sums, cumulative = len(daily_rollups.SUMS), len(daily_rollups.CUMULATIVE)
    from_blob = packed_histogram.from_blob
    pieces = {}
    for row in conn.execute(_DAILY_EDGES.format(containers=where), params):
        cid, last_ts, *values = row
        latest, values = values[:4], values[4:]
        own, own_histogram, values = values[:sums], values[sums], values[sums + 1:]
        first, last = values[:cumulative], values[cumulative:]
        piece = {"last_ts": last_ts, **dict(zip(daily_rollups.LATEST, latest)),
                 **dict(zip(daily_rollups.MAXIMA, maxima[cid]))}
        for name, mine, before, after in zip(daily_rollups.SUMS, own, first, last):
            piece[name] = after - before + mine
        piece["cpu_histogram"] = from_blob(last[-1]) - from_blob(first[-1]) + from_blob(own_histogram)
        pieces[cid] = piece
    return pieces


_HOURLY_FIGURES = ("last_ts", "samples", "cpu_usage_samples", "cpu_usage_sum_millicores", "cpu_usage_max_millicores",
                   "cpu_requested_sum_millicores", "memory_working_set_samples", "memory_working_set_sum_bytes",
                   "memory_working_set_max_bytes", "memory_requested_sum_bytes", "cpu_throttled_ratio_max",
                   "restart_count_max", "oom_events_sum", "oom_killed_samples")
_HOURLY_AGGREGATES = """
SELECT container_id, MAX(hour) + 3599, SUM(samples),
       SUM(cpu_usage_samples), COALESCE(SUM(cpu_usage_sum_millicores), 0), MAX(cpu_usage_max_millicores),
       COALESCE(SUM(cpu_request_millicores * cpu_usage_samples), 0),
       SUM(memory_working_set_samples), COALESCE(SUM(memory_working_set_sum_bytes), 0),
       MAX(memory_working_set_max_bytes), COALESCE(SUM(memory_request_bytes * memory_working_set_samples), 0),
       MAX(cpu_throttled_ratio_max), MAX(restart_count_max), SUM(oom_events_sum), SUM(oom_killed)
FROM hourly_rollups WHERE hour >= ? AND hour < ? {containers} GROUP BY container_id
"""
_HOURLY_LAST = """
SELECT container_id, MAX(hour), cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes
FROM hourly_rollups WHERE hour >= ? AND hour < ? {containers} GROUP BY container_id
"""


def _from_hourly(conn: sqlite3.Connection, start: int, end: int, ids: list[int] | None) -> dict[int, dict]:
    """Rollup hours starting in [start, end). Requests are each hour's highest; idle uses them."""
    params: list = [start, end]
    where = _containers_clause(ids, params)
    pieces = {row[0]: dict(zip(_HOURLY_FIGURES, row[1:]))
              for row in conn.execute(_HOURLY_AGGREGATES.format(containers=where), params)}
    for cid, _, *requests in conn.execute(_HOURLY_LAST.format(containers=where), params):
        pieces[cid].update(zip(daily_rollups.LATEST, requests))
        pieces[cid]["cpu_histogram"] = 0
    histograms = conn.execute(
        f"SELECT container_id, cpu_usage_histogram FROM hourly_rollups WHERE hour >= ? AND hour < ? {where}", params)
    for cid, blob in histograms:
        pieces[cid]["cpu_histogram"] += packed_histogram.pack_pairs(blob)
    return pieces


_READERS = {"daily": _from_daily, "hourly": _from_hourly, "raw": raw_usage}


def nearest_rank(sorted_values: list[int], percent: float) -> int | None:
    """The nearest-rank percentile, as the hourly rollups compute theirs."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values), max(1, math.ceil(len(sorted_values) * percent / 100))) - 1]


def _hour_floor(seconds: int) -> int:
    return seconds // HOUR_SECONDS * HOUR_SECONDS


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
