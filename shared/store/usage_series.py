"""Usage over time of a few workload containers, for the report page's charts.

Per pod: CPU and memory working set (average and peak of the step) against request and limit, at
the smallest step that keeps a chart under MAX_POINTS points (5 minutes for a few hours, an hour
for a week, six hours for 90 days). Hours older than the raw samples come from the hourly rollups.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS
from shared.store.daily_rollups import SAMPLES_BY_SPAN, SPANS_OF_CONTAINERS, hourly_watermark, run_range
from shared.store.window_usage import Window

STEPS_SECONDS = (300, 900, 1800, HOUR_SECONDS, 3 * HOUR_SECONDS, 6 * HOUR_SECONDS, 12 * HOUR_SECONDS, DAY_SECONDS)
MAX_POINTS = 400


@dataclass
class Point:
    """One step of one container; usage None where no Running sample reported any."""

    ts: int
    cpu_avg_millicores: float | None
    cpu_max_millicores: float | None
    cpu_request_millicores: float | None
    cpu_limit_millicores: float | None
    memory_avg_bytes: float | None
    memory_max_bytes: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None


def series_step(window: Window, interval_seconds: int) -> int:
    """The chart step in seconds: the smallest of STEPS_SECONDS not below the collection interval that
    keeps the window under MAX_POINTS points (else the largest)."""
    span = window.end - window.start
    return next((step for step in STEPS_SECONDS if step >= interval_seconds and span / step <= MAX_POINTS),
                STEPS_SECONDS[-1])


_RAW_STEPS = f"""
SELECT cs.container_id, CAST(r.started_at AS INTEGER) / :step * :step AS t,
       SUM(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       COUNT(IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL)),
       MAX(IIF(cs.phase = 'Running', s.cpu_usage_max_millicores, NULL)),
       MAX(cs.cpu_request_millicores), MAX(cs.cpu_limit_millicores),
       SUM(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       COUNT(IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL)),
       MAX(IIF(cs.phase = 'Running', s.memory_working_set_max_bytes, NULL)),
       MAX(cs.memory_request_bytes), MAX(cs.memory_limit_bytes)
FROM {SAMPLES_BY_SPAN}
WHERE {SPANS_OF_CONTAINERS} AND r.started_at >= :start AND r.started_at < :end
GROUP BY cs.container_id, t
"""
_HOURLY_STEPS = """
SELECT container_id, hour / :step * :step AS t,
       SUM(cpu_usage_sum_millicores), SUM(cpu_usage_samples), MAX(cpu_usage_max_millicores),
       MAX(cpu_request_millicores), MAX(cpu_limit_millicores),
       SUM(memory_working_set_sum_bytes), SUM(memory_working_set_samples), MAX(memory_working_set_max_bytes),
       MAX(memory_request_bytes), MAX(memory_limit_bytes)
FROM hourly_rollups
WHERE container_id IN (SELECT value FROM json_each(:ids)) AND hour >= :start AND hour < :end
GROUP BY container_id, t
"""


def usage_series(conn: sqlite3.Connection, container_ids: list[int], window: Window,
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
    for cid, ts, cpu_sum, cpu_n, cpu_max, cpu_req, cpu_lim, mem_sum, mem_n, mem_max, mem_req, mem_lim in pieces:
        figures = merged.setdefault((cid, ts), [0, 0, None, None, None, 0, 0, None, None, None])
        figures[0] += cpu_sum or 0
        figures[1] += cpu_n or 0
        figures[5] += mem_sum or 0
        figures[6] += mem_n or 0
        for index, value in ((2, cpu_max), (3, cpu_req), (4, cpu_lim), (7, mem_max), (8, mem_req), (9, mem_lim)):
            if value is not None:
                figures[index] = value if figures[index] is None else max(figures[index], value)
    series: dict[int, list[Point]] = {cid: [] for cid in container_ids}
    for (cid, ts), (cpu_sum, cpu_n, cpu_max, cpu_req, cpu_lim, mem_sum, mem_n, mem_max, mem_req, mem_lim) \
            in sorted(merged.items()):
        series[cid].append(Point(ts, cpu_sum / cpu_n if cpu_n else None, cpu_max, cpu_req, cpu_lim,
                                 mem_sum / mem_n if mem_n else None, mem_max, mem_req, mem_lim))
    return series
