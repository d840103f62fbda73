"""Usage over time of a few workload containers, for the report page's charts.

Per pod and per step: CPU and memory working set (the average of the pods' samples, the lowest and
highest pod sample, and the highest peak) against request and limit. Charts span the data present,
not the whole window (a week's window over an hour of history is an hour's chart), so the step is
chosen from that span (`data_span`): the smallest step that keeps a chart under MAX_POINTS points
(5 minutes for a few hours, an hour for a week, six hours for 90 days). Hours older than the raw
samples come from the hourly rollups, which keep sums and maxima but not the pods' lowest sample:
their steps have no lowest/highest pod (the charts draw the spread where the samples still exist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS
from shared.store.daily_rollups import SAMPLES_BY_SPAN, SPANS_OF_CONTAINERS, hourly_watermark, run_range
from shared.store.dialect import Connection
from shared.store.window_usage import Window

STEPS_SECONDS = (300, 900, 1800, HOUR_SECONDS, 3 * HOUR_SECONDS, 6 * HOUR_SECONDS, 12 * HOUR_SECONDS, DAY_SECONDS)
MAX_POINTS = 400


@dataclass
class Point:
    """One step of one container, per pod; usage None where no Running sample reported any."""

    ts: int  # the step's start
    seconds: int  # the step's length: hours still rolled up are an hour at least
    cpu_avg_millicores: float | None
    cpu_low_millicores: float | None  # the lowest pod sample of the step (raw samples only)
    cpu_high_millicores: float | None  # the highest pod sample of the step (raw samples only)
    cpu_max_millicores: float | None  # the highest peak within a sample's interval
    cpu_request_millicores: float | None
    cpu_limit_millicores: float | None
    memory_avg_bytes: float | None
    memory_low_bytes: float | None
    memory_high_bytes: float | None
    memory_max_bytes: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None


@dataclass(frozen=True)
class Span:
    """[first, last] Unix seconds of the stored samples of some containers within a window."""

    first: int
    last: int


def series_step(span: Span | None, interval_seconds: int) -> int:
    """The chart step in seconds: the smallest of STEPS_SECONDS not below the collection interval that
    keeps the span under MAX_POINTS points (else the largest)."""
    seconds = span.last - span.first if span else 0
    return next((step for step in STEPS_SECONDS if step >= interval_seconds and seconds / step <= MAX_POINTS),
                STEPS_SECONDS[-1])


def data_span(conn: Connection, container_ids: list[int], window: Window) -> Span | None:
    """When the samples (raw or rolled up) of these containers start and end within `window`; None
    without any. Reads the containers' spans, their runs and the (container_id, hour) index only."""
    first_run, last_run = run_range(conn, window.start, window.end)
    params = {"ids": json.dumps(container_ids), "start": window.start, "end": window.end,
              "first_run": first_run, "last_run": last_run}
    raw = conn.execute(f"SELECT CAST(MIN(r.started_at) AS INTEGER), CAST(MAX(r.started_at) AS INTEGER)"
                       f" FROM {SAMPLES_BY_SPAN} WHERE {SPANS_OF_CONTAINERS}", params).fetchone()
    hourly = conn.execute("SELECT MIN(hour), MAX(hour) FROM hourly_rollups WHERE container_id IN"
                          " (SELECT value FROM json_each(:ids)) AND hour >= :start AND hour < :end", params).fetchone()
    firsts = [value for value in (raw[0], hourly[0]) if value is not None]
    lasts = [value for value in (raw[1], hourly[1]) if value is not None]
    return Span(min(firsts), max(lasts)) if firsts else None


_RAW_STEPS = f"""
SELECT cs.container_id, CAST(r.started_at AS INTEGER) / :step * :step AS t,
       SUM(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       COUNT(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       MIN(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       MAX(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       MAX(IIF(cs.phase = 'Running', s.cpu_usage_max_millicores, NULL)),
       MAX(cs.cpu_request_millicores), MAX(cs.cpu_limit_millicores),
       SUM(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       COUNT(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       MIN(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       MAX(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       MAX(IIF(cs.phase = 'Running', s.memory_working_set_max_bytes, NULL)),
       MAX(cs.memory_request_bytes), MAX(cs.memory_limit_bytes)
FROM {SAMPLES_BY_SPAN}
WHERE {SPANS_OF_CONTAINERS} AND r.started_at >= :start AND r.started_at < :end
GROUP BY cs.container_id, t
"""
_HOURLY_STEPS = """
SELECT container_id, hour / :step * :step AS t,
       SUM(cpu_usage_sum_millicores), SUM(cpu_usage_samples), NULL, NULL, MAX(cpu_usage_max_millicores),
       MAX(cpu_request_millicores), MAX(cpu_limit_millicores),
       SUM(memory_working_set_sum_bytes), SUM(memory_working_set_samples), NULL, NULL,
       MAX(memory_working_set_max_bytes), MAX(memory_request_bytes), MAX(memory_limit_bytes)
FROM hourly_rollups
WHERE container_id IN (SELECT value FROM json_each(:ids)) AND hour >= :start AND hour < :end
GROUP BY container_id, t
"""
# A step's figures while its pieces (hourly and raw) are merged: how each one combines.
_SUMS, _COUNTS = (0, 7), (1, 8)
_LOWEST = (2, 9)  # the rest are highest values


def usage_series(conn: Connection, container_ids: list[int], window: Window,
                 step: int) -> dict[int, list[Point]]:
    """Points per container, oldest first; steps without samples are left out (charts show gaps)."""
    watermark = hourly_watermark(conn)
    hourly_step = max(step, HOUR_SECONDS)
    pieces: list[tuple] = []
    params = {"ids": json.dumps(container_ids), "end": window.end}
    if window.start < watermark:
        pieces += conn.execute(_HOURLY_STEPS, {**params, "step": hourly_step, "start": window.start,
                                               "end": min(window.end, watermark)}).fetchall()
    raw_start = max(window.start, watermark)
    first_run, last_run = run_range(conn, raw_start, window.end)
    pieces += conn.execute(_RAW_STEPS, {**params, "step": step, "start": raw_start, "first_run": first_run,
                                        "last_run": last_run}).fetchall()
    merged: dict[tuple[int, int], list] = {}
    for cid, ts, *figures in pieces:
        step_figures = merged.get((cid, ts))
        if step_figures is None:
            merged[(cid, ts)] = list(figures)
            continue
        for index, value in enumerate(figures):
            step_figures[index] = _combine(index, step_figures[index], value)
    series: dict[int, list[Point]] = {cid: [] for cid in container_ids}
    for (cid, ts), f in sorted(merged.items()):
        series[cid].append(Point(
            ts, hourly_step if ts < watermark else step, f[0] / f[1] if f[1] else None, f[2], f[3], f[4], f[5], f[6],
            f[7] / f[8] if f[8] else None, f[9], f[10], f[11], f[12], f[13]))
    return series


def _combine(index: int, mine: float | None, other: float | None) -> float | None:
    """Two pieces of one step (an hour both rolled up and raw) as one: sums add, extremes widen."""
    if other is None:
        return mine
    if mine is None:
        return other
    if index in _SUMS or index in _COUNTS:
        return mine + other
    return min(mine, other) if index in _LOWEST else max(mine, other)
