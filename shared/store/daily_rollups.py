"""Daily rollups: raw samples folded, run by run, into one row per workload container and UTC day.

A report over weeks cannot read every raw sample (5,000 containers for 7 days is 10 million rows)
nor every hourly rollup (90 days of them is 10.8 million); it reads a few day rows per container
instead. Each fold adds the samples of the runs stored since the previous fold: progress is the id
of the last folded run, not a time, because a sample's time says nothing about when it was
committed (a second demo over the same minutes, a clock stepped back, two runs in one second).

Rows hold the day's sums (also weighted by the window each sample's run covered), maxima and CPU
histogram (shared/store/histograms.py), and each sum again with every earlier day of the container
added (`*_cumulative`): a report over any run of days reads the first and last row of each
container for every sum and the percentile, and scans the rows in between for the maxima only. A
run whose samples belong to a day that already has later rows (a late run) is merged into its
day's row, and its sums are added to the running totals of every later row of the same container,
so every difference of running totals stays the sum of the days in between. The time the folded
runs covered is added to `daily_coverage` in the same transaction (shared/store/covered_time.py).

Day rows hold the samples with ts >= `folded_from` (the hourly watermark when folding first ran: the
samples before it were already rolled up into hours, and the report reads those from the hourly
rollups). Retention deletes no raw sample that is still to be folded (shared/store/retention.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

from shared.core.deadline import Deadline
from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS, day_floor
from shared.store import covered_time
from shared.store import histograms as usage_histogram
from shared.store.connection import is_postgres, transaction
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN

Number = TypeVar("Number", int, float)

RUNS_PER_TRANSACTION = 12  # about an hour of collections: a catch-up never holds the write lock long
FOLD_CONTAINERS = 20_000  # container ids folded at a time (_fold_runs)
DELETE_BATCH_ROWS = 5000

LATEST = ("cpu_request_millicores", "cpu_limit_millicores", "memory_request_bytes", "memory_limit_bytes")
MAXIMA = ("cpu_usage_max_millicores", "memory_working_set_max_bytes", "cpu_throttled_ratio_max", "restart_count_max")
# Each sample weighted by the window its run covered: averages over time divide these by the time
# the runs covered (shared/store/covered_time.py); averages per pod divide by the *_pod_seconds.
WEIGHTED = ("cpu_usage_pod_seconds", "cpu_usage_millicore_seconds", "cpu_requested_millicore_seconds",
            "memory_working_set_pod_seconds", "memory_working_set_byte_seconds", "memory_requested_byte_seconds")
SUMS = ("samples", "cpu_usage_samples", "cpu_usage_sum_millicores", "cpu_requested_sum_millicores",
        "memory_working_set_samples", "memory_working_set_sum_bytes", "memory_requested_sum_bytes",
        "oom_events_sum", "oom_killed_samples", *WEIGHTED)
CUMULATIVE = tuple(f"{name}_cumulative" for name in (*SUMS, "cpu_usage_histogram"))
COLUMNS = ("container_id", "day", "last_ts", *LATEST, *MAXIMA, *SUMS, "cpu_usage_histogram", *CUMULATIVE)

# A sample with its run (r: time, window) and its span (cs: container, phase, requests, limits). A
# sample's time `ts` is its run's started_at in whole seconds; a range of ts is the same range of
# started_at when its ends are whole seconds, which every caller's are, so runs_started finds it.
SAMPLES_BY_RUN = ("runs r CROSS JOIN samples s ON s.run_id = r.id"
                  " CROSS JOIN container_spans cs ON cs.id = s.span_id")
# The samples of a few containers: their spans first (container_spans_container), then each span's
# runs from :first_run to :last_run (the ids of the window's runs; run_range), then the sample.
SAMPLES_BY_SPAN = ("container_spans cs CROSS JOIN runs r"
                   " ON r.id BETWEEN MAX(cs.first_run_id, :first_run) AND MIN(cs.last_run_id, :last_run)"
                   " CROSS JOIN samples s ON s.run_id = r.id AND s.span_id = cs.id")
SPANS_OF_CONTAINERS = ("cs.container_id IN (SELECT value FROM json_each(:ids)) AND cs.first_run_id <= :last_run"
                       " AND cs.last_run_id >= :first_run")

# Usage counts only while the pod is Running; restarts, OOM kills and events count in any phase.
# `*_requested_sum` adds the request of every sample with usage: idle is measured against the
# request in force at each sample, whatever it was changed to later. A sample weighs the window of
# its run (`seconds`); TOTAL() sums value x seconds as REAL, which never overflows.
_AGGREGATES = """
SELECT container_id, {period} AS period, MAX(ts), COUNT(*),
       COUNT(cpu), COALESCE(SUM(cpu), 0), MAX(cpu_max), COALESCE(SUM(IIF(cpu IS NULL, NULL, cpu_request)), 0),
       group_concat(cpu),
       COUNT(memory), COALESCE(SUM(memory), 0), MAX(memory_max),
       COALESCE(SUM(IIF(memory IS NULL, NULL, memory_request)), 0),
       MAX(throttled), MAX(restart_count), COALESCE(SUM(oom_events), 0),
       COALESCE(SUM(last_termination_reason = 'OOMKilled'), 0),
       COALESCE(SUM(IIF(cpu IS NULL, NULL, seconds)), 0), TOTAL(cpu * seconds),
       TOTAL(IIF(cpu IS NULL, NULL, cpu_request * seconds)),
       COALESCE(SUM(IIF(memory IS NULL, NULL, seconds)), 0), TOTAL(memory * seconds),
       TOTAL(IIF(memory IS NULL, NULL, memory_request * seconds))
FROM (
    SELECT cs.container_id, CAST(r.started_at AS INTEGER) AS ts, s.restart_count, s.oom_events,
           s.last_termination_reason, cs.cpu_request_millicores AS cpu_request,
           cs.memory_request_bytes AS memory_request,
           IIF(cs.phase = 'Running', s.cpu_usage_avg_millicores, NULL) AS cpu,
           IIF(cs.phase = 'Running', s.cpu_usage_max_millicores, NULL) AS cpu_max,
           IIF(cs.phase = 'Running', s.memory_working_set_avg_bytes, NULL) AS memory,
           IIF(cs.phase = 'Running', s.memory_working_set_max_bytes, NULL) AS memory_max,
           IIF(cs.phase = 'Running', s.cpu_throttled_ratio, NULL) AS throttled,
           r.window_seconds AS seconds
    FROM {samples}
    WHERE {where}
) AS sampled
GROUP BY {group}
"""
# SQLite takes the bare columns from the row holding MAX(ts): the newest requests and limits.
_LATEST = """
SELECT container_id, {period} AS period, MAX(ts),
       cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes
FROM (
    SELECT cs.container_id, CAST(r.started_at AS INTEGER) AS ts, cs.cpu_request_millicores, cs.cpu_limit_millicores,
           cs.memory_request_bytes, cs.memory_limit_bytes
    FROM {samples}
    WHERE {where}
) AS sampled
GROUP BY {group}
"""
# PostgreSQL has no bare columns: the row with the newest ts of each group, by DISTINCT ON.
_LATEST_POSTGRES = """
SELECT DISTINCT ON ({group}) container_id, {period} AS period, ts,
       cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes
FROM (
    SELECT cs.container_id, CAST(r.started_at AS INTEGER) AS ts, cs.cpu_request_millicores, cs.cpu_limit_millicores,
           cs.memory_request_bytes, cs.memory_limit_bytes
    FROM {samples}
    WHERE {where}
) AS sampled
ORDER BY {group}, ts DESC
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
    """The day rows hold the samples with ts >= folded_from of the runs with id <= folded_run_id."""

    folded_from: int
    folded_run_id: int


def coverage(conn: Connection) -> Coverage | None:
    """None before the first fold."""
    row = conn.execute("SELECT folded_from, folded_run_id FROM daily_rollup_progress WHERE id = 1").fetchone()
    return Coverage(*row) if row else None


def hourly_watermark(conn: Connection) -> int:
    """The end of the newest hourly rollup (shared/store/retention.py): raw samples from here on are all
    kept, older ones may be deleted. 0 before the first rollup."""
    newest = conn.execute("SELECT MAX(hour) FROM hourly_rollups").fetchone()[0]
    return 0 if newest is None else newest + HOUR_SECONDS


def unfolded_runs_exist(conn: Connection, folded: Coverage) -> bool:
    """Whether some successful runs of the time the day rows hold are not in them yet, so a window must
    also read their samples raw and count their time."""
    return conn.execute(f"SELECT 1 FROM runs WHERE id > ? AND {SUCCESSFUL_RUN} AND started_at >= ? LIMIT 1",
                        (folded.folded_run_id, folded.folded_from)).fetchone() is not None


def oldest_unfolded_ts(conn: Connection) -> int | None:
    """The time of the oldest sample a fold still has to add (None: none, or folding never ran, so
    the first fold starts at the hourly watermark and needs nothing older). Retention keeps it."""
    folded = coverage(conn)
    if folded is None:
        return None
    return conn.execute("SELECT MIN(CAST(started_at AS INTEGER)) FROM runs r WHERE id > ? AND +started_at >= ?"
                        " AND EXISTS (SELECT 1 FROM samples s WHERE s.run_id = r.id)",  # the few unfolded, by id
                        (folded.folded_run_id, folded.folded_from)).fetchone()[0]


def run_range(conn: Connection, start: int, end: int, after_run_id: int | None = None) -> tuple[int, int]:
    """The smallest and largest id of the runs started in [start, end) (after `after_run_id` only, when given);
    (1, 0) when there are none: the bounds SAMPLES_BY_SPAN reads a window's runs between."""
    first, last = conn.execute("SELECT MIN(id), MAX(id) FROM runs WHERE started_at >= ? AND started_at < ?"
                               " AND id > ?", (start, end, after_run_id or 0)).fetchone()
    return (1, 0) if first is None else (first, last)


def raw_usage(
    conn: Connection, start: int, end: int, container_ids: list[int] | None = None,
    after_run_id: int | None = None,
) -> dict[int, dict]:
    """Per container, the day-row figures of the raw samples with start <= ts < end, plus
    `cpu_values`: every CPU usage value, for exact percentiles. `container_ids` restricts the
    containers (read through their spans); `after_run_id` reads only the samples of later runs
    (those not folded yet)."""
    params: dict = {"start": start, "end": end}
    if after_run_id is None:
        where = "r.started_at >= :start AND r.started_at < :end"
    else:  # the few unfolded runs, by id; not through runs_started over the whole window
        where, params["after"] = "r.id > :after AND +r.started_at >= :start AND +r.started_at < :end", after_run_id
    samples = SAMPLES_BY_RUN
    if container_ids is not None:
        samples, where = SAMPLES_BY_SPAN, f"{SPANS_OF_CONTAINERS} AND {where}"
        params["ids"] = json.dumps(container_ids)
        params["first_run"], params["last_run"] = run_range(conn, start, end, after_run_id)
    return {container_id: figures
            for (container_id, _), figures in _sample_figures(conn, samples, where, params).items()}


def _sample_figures(conn: Connection, samples: str, where: str, params: dict,
                    by_day: bool = False) -> dict[tuple[int, int], dict]:
    """Figures of the samples matching `where`, per (container, UTC day) or per (container, 0)."""
    shape = ({"period": f"ts / {DAY_SECONDS} * {DAY_SECONDS}", "group": "container_id, period"} if by_day
             else {"period": "0", "group": "container_id"})
    latest = {(row[0], row[1]): row[3:]
              for row in conn.execute((_LATEST_POSTGRES if is_postgres(conn) else _LATEST).format(
                  samples=samples, where=where, **shape), params)}
    return {(row[0], row[1]): _figures(row, latest[(row[0], row[1])])
            for row in conn.execute(_AGGREGATES.format(samples=samples, where=where, **shape), params)}


def _figures(aggregates: tuple, latest: tuple) -> dict:
    (container_id, _, last_ts, samples, cpu_samples, cpu_sum, cpu_max, cpu_requested, cpu_values,
     memory_samples, memory_sum, memory_max, memory_requested, throttled_max, restarts_max, oom_events,
     oom_killed), weighted = aggregates[:17], aggregates[17:]
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
        **dict(zip(WEIGHTED, weighted)),
    }


def fold_samples(
    conn: Connection, now: float, retention_days: int, deadline: Deadline | None = None,
) -> FoldResult:
    """Fold the samples of every run stored since the last fold, oldest run first, then drop day rows
    older than `retention_days` (RETENTION_HOURLY_DAYS). Each batch of runs is its own transaction,
    so a fold cut short by its deadline or a crash goes on where it stopped and never folds a sample
    twice."""
    deadline = deadline or Deadline(None)
    result = FoldResult()
    while True:
        if deadline.remaining() <= 0:
            result.complete = False
            return result
        with transaction(conn):
            batch = _next_runs(conn)
            if batch is None:
                break
            folded, written = _fold_runs(conn, *batch)
        result.samples_folded += folded
        result.day_rows_written += written
    result.day_rows_deleted, result.complete = _delete_old_days(
        conn, day_floor(now) - retention_days * DAY_SECONDS, deadline)
    return result


def _next_runs(conn: Connection) -> tuple[Coverage, int] | None:
    """(progress, last run id of the batch): the next runs with samples to fold; None when all are.

    The first fold starts at the hourly watermark: older raw samples may be partly deleted already,
    and the report reads their hours from the hourly rollups.
    """
    progress = coverage(conn)
    newest_run = conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]
    if progress is None:
        progress = Coverage(hourly_watermark(conn), 0)
        conn.execute("INSERT INTO daily_rollup_progress (id, folded_from, folded_run_id) VALUES (1, ?, ?)",
                     (progress.folded_from, 0))
    elif newest_run < progress.folded_run_id:
        # Retention deleted every run (none for RETENTION_HOURLY_DAYS), and without AUTOINCREMENT
        # SQLite numbers the next ones from 1 again: all the runs there are now are unfolded.
        progress = Coverage(progress.folded_from, 0)
        conn.execute("UPDATE daily_rollup_progress SET folded_run_id = 0 WHERE id = 1")
    first = conn.execute("SELECT MIN(run_id) FROM samples WHERE run_id > ?", (progress.folded_run_id,)).fetchone()[0]
    if first is None:
        return None
    last = conn.execute("SELECT id FROM runs WHERE id >= ? ORDER BY id LIMIT 1 OFFSET ?",
                        (first, RUNS_PER_TRANSACTION - 1)).fetchone()
    return progress, newest_run if last is None else last[0]


def _fold_runs(conn: Connection, progress: Coverage, last_run_id: int) -> tuple[int, int]:
    """Add the samples of the runs after the folded one up to `last_run_id` to their day rows, day by
    day, oldest first; (samples folded, rows written). Containers are folded FOLD_CONTAINERS ids at a
    time: a container's rows never depend on another's, and a 150,000-container cluster's pieces and
    stored day rows all at once would take hundreds of MB for a moment."""
    # Groups of FOLD_CONTAINERS existing ids (ids retention freed leave gaps: a range of ids could be empty)
    ids = [row[0] for row in conn.execute("SELECT id FROM containers ORDER BY id")]
    bounds = [*ids[::FOLD_CONTAINERS], (ids[-1] + 1 if ids else 0)]
    folded = written = 0
    for first_id, next_id in pairwise(bounds):
        params = {"after": progress.folded_run_id, "last": last_run_id, "from": progress.folded_from,
                  "low": first_id, "high": next_id}
        pieces = _sample_figures(conn, SAMPLES_BY_RUN, "r.id > :after AND r.id <= :last AND +r.started_at >= :from"
                                 " AND cs.container_id >= :low AND cs.container_id < :high", params, by_day=True)
        days: dict[int, dict[int, dict]] = {}
        for (container_id, day), piece in pieces.items():
            piece["day"] = day
            piece["cpu_usage_histogram"] = usage_histogram.pack_values(piece.pop("cpu_values"))
            days.setdefault(day, {})[container_id] = piece
        del pieces
        for day in sorted(days):
            folded += sum(piece["samples"] for piece in days[day].values())
            written += _fold_day(conn, day, days[day], first_id, next_id)
    covered_time.fold_days(conn, progress.folded_run_id, last_run_id, progress.folded_from)
    conn.execute("UPDATE daily_rollup_progress SET folded_run_id = ? WHERE id = 1", (last_run_id,))
    return folded, written


_REPLACE = f"INSERT OR REPLACE INTO daily_rollups ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPSERT_POSTGRES = (f"INSERT INTO daily_rollups ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
                    " ON CONFLICT (container_id, day) DO UPDATE SET "
                    + ", ".join(f"{name} = excluded.{name}" for name in COLUMNS if name not in ("container_id", "day")))


def _fold_day(conn: Connection, day: int, pieces: dict[int, dict], low_id: int, high_id: int) -> int:
    """Merge one day's pieces (of the containers with low_id <= id < high_id) into their rows, then add
    them to the running totals of later rows."""
    stored = {row[0]: dict(zip(COLUMNS, row))
              for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM daily_rollups WHERE day = ?"
                                      " AND container_id >= ? AND container_id < ?", (day, low_id, high_id))
              if row[0] in pieces}
    rows = [_merged(conn, stored.get(container_id), piece) for container_id, piece in pieces.items()]
    conn.executemany(_UPSERT_POSTGRES if is_postgres(conn) else _REPLACE,
                     [tuple(row[name] for name in COLUMNS) for row in rows])
    _add_to_later_days(conn, day, pieces, low_id, high_id)
    return len(rows)


def _merged(conn: Connection, stored: dict | None, piece: dict) -> dict:
    """The day row with the piece added (a new row continues the container's running totals)."""
    histogram = piece["cpu_usage_histogram"]
    if stored is None:
        previous = conn.execute(_PREVIOUS_CUMULATIVE, (piece["container_id"], piece["day"])).fetchone()
        row = {**piece, **dict(zip(CUMULATIVE, previous or (0,) * len(CUMULATIVE)))}
    else:
        row = dict(stored)
        if piece["last_ts"] >= row["last_ts"]:  # a late run's requests are not the newest
            row.update({name: piece[name] for name in LATEST})
        row["last_ts"] = max(row["last_ts"], piece["last_ts"])
        for name in MAXIMA:
            row[name] = larger(row[name], piece[name])
        for name in SUMS:
            row[name] += piece[name]
        histogram += usage_histogram.from_blob(stored["cpu_usage_histogram"])
    for name in SUMS:
        row[f"{name}_cumulative"] += piece[name]
    row["cpu_usage_histogram"] = usage_histogram.to_blob(histogram)
    row["cpu_usage_histogram_cumulative"] = usage_histogram.to_blob(
        usage_histogram.from_blob(row["cpu_usage_histogram_cumulative"]) + piece["cpu_usage_histogram"])
    return row


def _add_to_later_days(conn: Connection, day: int, pieces: dict[int, dict], low_id: int,
                       high_id: int) -> None:
    """Add late pieces to the running totals of their containers' later day rows. Folding the newest
    day (the usual case) finds no later row: one index look-up."""
    later = conn.execute(f"SELECT container_id, day, {', '.join(CUMULATIVE)} FROM daily_rollups WHERE day > ?"
                         " AND container_id >= ? AND container_id < ?", (day, low_id, high_id)).fetchall()
    updates = []
    for container_id, later_day, *totals in later:
        piece = pieces.get(container_id)
        if piece is None:
            continue
        values = dict(zip(CUMULATIVE, totals))
        for name in SUMS:
            values[f"{name}_cumulative"] += piece[name]
        values["cpu_usage_histogram_cumulative"] = usage_histogram.to_blob(
            usage_histogram.from_blob(values["cpu_usage_histogram_cumulative"]) + piece["cpu_usage_histogram"])
        updates.append((*values.values(), container_id, later_day))
    conn.executemany(f"UPDATE daily_rollups SET {', '.join(f'{name} = ?' for name in CUMULATIVE)}"
                     " WHERE container_id = ? AND day = ?", updates)


def larger(a: Number | None, b: Number | None) -> Number | None:
    """The larger of two maxima, either of which may be missing."""
    return b if a is None else a if b is None else max(a, b)


def _delete_old_days(conn: Connection, before_day: int, deadline: Deadline) -> tuple[int, bool]:
    """Delete day rows before `before_day` in batches; (rows deleted, whether all are gone)."""
    deleted = 0
    while deadline.remaining() > 0:
        with transaction(conn):
            count = conn.execute(
                "DELETE FROM daily_rollups WHERE (container_id, day) IN"
                " (SELECT container_id, day FROM daily_rollups WHERE day < ? LIMIT ?)",
                (before_day, DELETE_BATCH_ROWS),
            ).rowcount
            conn.execute("DELETE FROM daily_coverage WHERE day < ?", (before_day,))
        deleted += count
        if count < DELETE_BATCH_ROWS:
            return deleted, True
    return deleted, False
