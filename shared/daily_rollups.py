"""Daily rollups: raw samples folded, as they arrive, into one row per workload container and UTC day.

A report over weeks cannot read every raw sample (5,000 containers for 7 days is 10 million rows)
nor every hourly rollup (90 days of them is 10.8 million); it reads a few day rows per container
instead. Folding adds only the samples stored since the previous fold (the `folded_until`
watermark), so after each collection it costs one run's rows. It must run before retention deletes
raw samples: samples deleted unfolded leave a gap that the report fills from the hourly rollups.

Rows hold the day's sums, maxima and packed CPU histogram (shared/packed_histogram.py), and each sum
again with every earlier day of the container added (`*_cumulative`): a report over any run of days
reads the first and last row of each container for every sum and the percentile, and scans the
rows in between for the maxima only.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from shared import packed_histogram
from shared.deadline import Deadline
from shared.store import transaction

DAY_SECONDS = 86_400
HOUR_SECONDS = 3600
CHUNK_SECONDS = HOUR_SECONDS  # a catch-up folds at most an hour of samples per transaction
DELETE_BATCH_ROWS = 5000

LATEST = ("cpu_request_millicores", "cpu_limit_millicores", "memory_request_bytes", "memory_limit_bytes")
MAXIMA = ("cpu_usage_max_millicores", "memory_working_set_max_bytes", "cpu_throttled_ratio_max", "restart_count_max")
SUMS = ("samples", "cpu_usage_samples", "cpu_usage_sum_millicores", "cpu_requested_sum_millicores",
        "memory_working_set_samples", "memory_working_set_sum_bytes", "memory_requested_sum_bytes",
        "oom_events_sum", "oom_killed_samples")
CUMULATIVE = tuple(f"{name}_cumulative" for name in (*SUMS, "cpu_usage_histogram"))
COLUMNS = ("container_id", "day", "last_ts", *LATEST, *MAXIMA, *SUMS, "cpu_usage_histogram", *CUMULATIVE)

# Usage counts only while the pod is Running; restarts, OOM kills and events count in any phase.
_RAW_AGGREGATES = """
SELECT container_id, MAX(ts), COUNT(*),
       COUNT(cpu), COALESCE(SUM(cpu), 0), MAX(cpu_max), COALESCE(SUM(IIF(cpu IS NULL, NULL, cpu_request)), 0),
       group_concat(cpu),
       COUNT(memory), COALESCE(SUM(memory), 0), MAX(memory_max),
       COALESCE(SUM(IIF(memory IS NULL, NULL, memory_request)), 0),
       MAX(throttled), MAX(restart_count), COALESCE(SUM(oom_events), 0),
       COALESCE(SUM(last_termination_reason = 'OOMKilled'), 0)
FROM (
    SELECT container_id, ts, restart_count, oom_events, last_termination_reason,
           cpu_request_millicores AS cpu_request, memory_request_bytes AS memory_request,
           IIF(phase = 'Running', cpu_usage_avg_millicores, NULL) AS cpu,
           IIF(phase = 'Running', cpu_usage_max_millicores, NULL) AS cpu_max,
           IIF(phase = 'Running', memory_working_set_avg_bytes, NULL) AS memory,
           IIF(phase = 'Running', memory_working_set_max_bytes, NULL) AS memory_max,
           IIF(phase = 'Running', cpu_throttled_ratio, NULL) AS throttled
    FROM samples WHERE ts >= ? AND ts < ? {containers}
)
GROUP BY container_id
"""
# SQLite takes the bare columns from the row holding MAX(ts): the newest requests and limits.
_RAW_LATEST = """
SELECT container_id, MAX(ts), cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes
FROM samples WHERE ts >= ? AND ts < ? {containers} GROUP BY container_id
"""
_PREVIOUS_CUMULATIVE = f"""
SELECT {', '.join(CUMULATIVE)} FROM daily_rollups WHERE container_id = ? AND day < ? ORDER BY day DESC LIMIT 1
"""


@dataclass
class FoldResult:
    """What one fold did; `complete` is False when the deadline stopped it (the next fold goes on)."""

    samples_folded: int = 0
    day_rows_written: int = 0
    day_rows_deleted: int = 0
    complete: bool = True


@dataclass(frozen=True)
class Coverage:
    """Raw samples with folded_from <= ts < folded_until are in the daily rollups."""

    folded_from: int
    folded_until: int


def coverage(conn: sqlite3.Connection) -> Coverage | None:
    row = conn.execute("SELECT folded_from, folded_until FROM daily_rollup_progress WHERE id = 1").fetchone()
    return Coverage(*row) if row else None


def hourly_watermark(conn: sqlite3.Connection) -> int:
    """The end of the newest hourly rollup: raw samples are complete from here on (shared/retention.py)."""
    newest = conn.execute("SELECT MAX(hour) FROM hourly_rollups").fetchone()[0]
    return 0 if newest is None else newest + HOUR_SECONDS


def day_floor(seconds: float) -> int:
    return int(seconds // DAY_SECONDS) * DAY_SECONDS


def fold_samples(
    conn: sqlite3.Connection, now: float, retention_days: int, deadline: Deadline | None = None,
) -> FoldResult:
    """Fold every raw sample stored since the last fold, oldest first, then drop day rows older than
    `retention_days` (RETENTION_HOURLY_DAYS). Each chunk is its own transaction, so a fold cut short by
    its deadline or a crash goes on where it stopped and never folds a sample twice."""
    deadline = deadline or Deadline(None)
    result = FoldResult()
    while True:
        if deadline.remaining() <= 0:
            result.complete = False
            return result
        with transaction(conn):
            chunk = _next_chunk(conn)
            if chunk is None:
                break
            folded, written = _fold_chunk(conn, *chunk)
        result.samples_folded += folded
        result.day_rows_written += written
    result.day_rows_deleted, result.complete = _delete_old_days(
        conn, day_floor(now) - retention_days * DAY_SECONDS, deadline)
    return result


def _next_chunk(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """The next range [start, end) of samples to fold, within one UTC day; None when all are folded.

    The first fold starts where raw samples are complete: the hourly watermark, or the oldest sample
    when nothing was rolled up yet. When retention deleted samples before they were folded, folding
    starts again at the watermark and the day rows from the gap on are dropped: the report reads
    those days from the hourly rollups.
    """
    progress = coverage(conn)
    watermark = hourly_watermark(conn)
    if progress is None or progress.folded_until < watermark:
        if progress is not None:
            conn.execute("DELETE FROM daily_rollups WHERE day >= ?", (day_floor(progress.folded_until),))
        first = conn.execute("SELECT MIN(ts) FROM samples WHERE ts >= ?", (watermark,)).fetchone()[0]
        if first is None:
            return None
        start = watermark or first
        conn.execute("INSERT OR REPLACE INTO daily_rollup_progress (id, folded_from, folded_until) VALUES (1, ?, ?)",
                     (start, start))
    else:
        start = progress.folded_until
    first, newest = conn.execute("SELECT MIN(ts), MAX(ts) FROM samples WHERE ts >= ?", (start,)).fetchone()
    if first is None:
        return None
    # never past the newest stored sample: the next collection's samples are newer than it
    end = min(day_floor(first) + DAY_SECONDS, first // HOUR_SECONDS * HOUR_SECONDS + CHUNK_SECONDS, newest + 1)
    return first, end


def raw_usage(
    conn: sqlite3.Connection, start: int, end: int, container_ids: list[int] | None = None,
) -> dict[int, dict]:
    """Per container, the day-row figures of the raw samples with start <= ts < end (restricted to
    `container_ids` when given), plus `cpu_values`: every CPU usage value, for exact percentiles."""
    where, params = "", [start, end]
    if container_ids is not None:
        where = "AND container_id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(container_ids))
    latest = {row[0]: row[2:] for row in conn.execute(_RAW_LATEST.format(containers=where), params)}
    return {row[0]: _raw_row(row, latest[row[0]])
            for row in conn.execute(_RAW_AGGREGATES.format(containers=where), params)}


def _raw_row(aggregates: tuple, latest: tuple) -> dict:
    (container_id, last_ts, samples, cpu_samples, cpu_sum, cpu_max, cpu_requested, cpu_values,
     memory_samples, memory_sum, memory_max, memory_requested, throttled_max, restarts_max, oom_events,
     oom_killed) = aggregates
    return {
        "container_id": container_id, "last_ts": last_ts, "samples": samples,
        **dict(zip(LATEST, latest)),
        "cpu_usage_samples": cpu_samples, "cpu_usage_sum_millicores": cpu_sum, "cpu_usage_max_millicores": cpu_max,
        "cpu_requested_sum_millicores": cpu_requested,
        "cpu_values": [int(value) for value in cpu_values.split(",")] if cpu_values else [],
        "memory_working_set_samples": memory_samples, "memory_working_set_sum_bytes": memory_sum,
        "memory_working_set_max_bytes": memory_max, "memory_requested_sum_bytes": memory_requested,
        "cpu_throttled_ratio_max": throttled_max, "restart_count_max": restarts_max,
        "oom_events_sum": oom_events, "oom_killed_samples": oom_killed,
    }


def _fold_chunk(conn: sqlite3.Connection, start: int, end: int) -> tuple[int, int]:
    """Add the samples of [start, end) (one day) to their day rows; (samples folded, rows written)."""
    day = day_floor(start)
    existing = {row[0]: dict(zip(COLUMNS, row))
                for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM daily_rollups WHERE day = ?", (day,))}
    rows, folded = [], 0
    for chunk in raw_usage(conn, start, end).values():
        chunk["day"] = day
        chunk["cpu_usage_histogram"] = packed_histogram.pack_values(chunk.pop("cpu_values"))
        folded += chunk["samples"]
        rows.append(_merged(conn, existing.get(chunk["container_id"]), chunk))
    conn.executemany(
        f"INSERT OR REPLACE INTO daily_rollups ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [tuple(row[name] for name in COLUMNS) for row in rows],
    )
    conn.execute("UPDATE daily_rollup_progress SET folded_until = ? WHERE id = 1", (end,))
    return folded, len(rows)


def _merged(conn: sqlite3.Connection, stored: dict | None, chunk: dict) -> dict:
    """The day row with the chunk added (a new row continues the container's cumulative sums)."""
    histogram = chunk["cpu_usage_histogram"]
    if stored is None:
        previous = conn.execute(_PREVIOUS_CUMULATIVE, (chunk["container_id"], chunk["day"])).fetchone()
        row = {**chunk, **dict(zip(CUMULATIVE, previous or (0,) * len(CUMULATIVE)))}
    else:
        row = dict(stored)
        row.update({name: chunk[name] for name in LATEST})
        row["last_ts"] = max(row["last_ts"], chunk["last_ts"])
        for name in MAXIMA:
            row[name] = _max(row[name], chunk[name])
        for name in SUMS:
            row[name] += chunk[name]
        histogram += packed_histogram.from_blob(stored["cpu_usage_histogram"])
    for name in SUMS:
        row[f"{name}_cumulative"] += chunk[name]
    row["cpu_usage_histogram"] = packed_histogram.to_blob(histogram)
    row["cpu_usage_histogram_cumulative"] = packed_histogram.to_blob(
        packed_histogram.from_blob(row["cpu_usage_histogram_cumulative"]) + chunk["cpu_usage_histogram"])
    return row


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _delete_old_days(conn: sqlite3.Connection, before_day: int, deadline: Deadline) -> tuple[int, bool]:
    """Delete day rows before `before_day` in batches; (rows deleted, whether all are gone)."""
    deleted = 0
    while deadline.remaining() > 0:
        with transaction(conn):
            count = conn.execute(
                "DELETE FROM daily_rollups WHERE (container_id, day) IN"
                " (SELECT container_id, day FROM daily_rollups WHERE day < ? LIMIT ?)",
                (before_day, DELETE_BATCH_ROWS),
            ).rowcount
        deleted += count
        if count < DELETE_BATCH_ROWS:
            return deleted, True
    return deleted, False
