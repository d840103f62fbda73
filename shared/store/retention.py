"""Data retention: raw samples become hourly rollups, old rows go, and so do identities nothing uses.

Raw samples older than RETENTION_RAW_DAYS are rolled up into one `hourly_rollups` row per workload
container and UTC hour, with the same figures as a day row of shared/store/daily_rollups.py (computed by
the same query: usage of Running samples only, the newest sample's requests and limits, the request
of every sample with usage summed for idle) plus the exact hourly p95 and a CPU histogram for p95
over many hours (shared/store/histograms.py), then deleted with their runs' node samples. The time
the runs of each rolled-up hour covered is kept beside the rollups (`hourly_coverage`,
shared/store/covered_time.py) and goes with them. Rollups, and
the `runs` rows (kept as long as the rollups, so the collection history covers the same period as
the data), go after RETENTION_HOURLY_DAYS. Container spans no sample names any more, then pods,
containers, workloads and nodes that no row refers to any more are deleted last, by passes that
deleted something (so a pass with nothing to do stays a few index look-ups; what a pass cut short
leaves goes with the next hour's pass).

A collection must never wait long for this: every write is a transaction of at most
RETENTION_BATCH_ROWS rows, shrunk when one takes longer than TARGET_BATCH_SECONDS, and followed by
a pause as long as the batch, so the write lock is free at least half the time. A pass is
resumable: hours are rolled up oldest first and raw rows are deleted only below the newest
rolled-up hour (the watermark), so a pass cut short by its time budget or a crash goes on where
it stopped and never rolls an hour up twice. Raw samples the daily fold has not added yet are kept
until it has. This assumes the clock does not move backwards by more than RETENTION_RAW_DAYS: a
sample stored with a time below the watermark is in no hourly rollup.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.core.deadline import Deadline
from shared.core.settings import Settings
from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS, hour_floor
from shared.store.collector_lock import cluster_lock
from shared.store.connection import StoreError, is_postgres, open_store, store_exists, transaction
from shared.store.covered_time import record_hours
from shared.store.daily_rollups import WEIGHTED, fold_samples, hourly_watermark, oldest_unfolded_ts, raw_usage
from shared.store.dialect import Connection
from shared.store.histograms import nearest_rank, pack_values, to_blob
from shared.store.sample_migration import MOVED_SAMPLES

log = logging.getLogger(__name__)

TARGET_BATCH_SECONDS = 0.05
MIN_BATCH_ROWS = 100
FIRST_BATCH_ROWS = 1000


@dataclass
class RetentionResult:
    """What one pass did. `complete` is False when its time budget ran out: the next pass goes on."""

    hours_rolled_up: int = 0
    rollup_rows: int = 0
    samples_deleted: int = 0
    node_samples_deleted: int = 0
    hpa_rows_deleted: int = 0  # what runs saw of HPAs (samples, listings) and declarations no run names any more
    runs_deleted: int = 0
    rollups_deleted: int = 0
    spans_deleted: int = 0
    pods_deleted: int = 0
    containers_deleted: int = 0
    workloads_deleted: int = 0
    nodes_deleted: int = 0
    complete: bool = True
    skipped: bool = False
    seconds: float = 0.0

    @property
    def deleted_rows(self) -> int:
        """Every row the pass deleted, whatever the table."""
        return (self.samples_deleted + self.node_samples_deleted + self.hpa_rows_deleted + self.runs_deleted
                + self.rollups_deleted
                + self.spans_deleted + self.pods_deleted + self.containers_deleted + self.workloads_deleted
                + self.nodes_deleted)

    def as_dict(self) -> dict:
        """The result for `k8s-monitor retention --json`, with the total of deleted rows."""
        return {**asdict(self), "deleted_rows": self.deleted_rows}


@dataclass(frozen=True)
class Cutoffs:
    """The boundaries of one pass, in Unix seconds on UTC hour boundaries: what is older goes."""

    raw_before: int  # samples of hours before this are rolled up, then deleted
    hourly_before: int  # rollups of hours before this, and runs started before it, are deleted


def cutoffs(settings: Settings, now: float) -> Cutoffs:
    """Hour-aligned, so only whole hours are rolled up. Rollups never go before the raw rows do."""
    keep_hourly_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    return Cutoffs(
        raw_before=hour_floor(now - settings.retention_raw_days * DAY_SECONDS),
        hourly_before=hour_floor(now - keep_hourly_days * DAY_SECONDS),
    )


def retention_lock_path(settings: Settings) -> Path:
    """One pass at a time: concurrent passes would only repeat each other's work."""
    return settings.database_path.with_name(settings.database_path.name + ".retention.lock")


def apply_retention(
    settings: Settings, clock: Callable[[], float] = time.time, budget_seconds: float | None = None,
) -> RetentionResult:
    """One retention pass; `skipped` when another pass is running, incomplete when out of budget."""
    if not store_exists(settings):
        raise StoreError(f"database {settings.database_path} does not exist yet (DATABASE_PATH); nothing to prune")
    started = time.perf_counter()
    with cluster_lock(settings, "retention", retention_lock_path(settings)) as held:
        if not held:
            return RetentionResult(skipped=True)
        conn = open_store(settings)
        try:
            now = clock()
            result = _Pass(conn, cutoffs(settings, now), Deadline(budget_seconds),
                           _Pacer(settings.retention_batch_rows), now, settings.retention_hourly_days).run()
        finally:
            conn.close()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def retention_after_collection(
    settings: Settings, clock: Callable[[], float] = time.time, budget_seconds: float | None = None,
) -> RetentionResult | None:
    """The pass at the end of a successful collection, within RETENTION_BUDGET_SECONDS (or the
    smaller `budget_seconds` left of the invocation).

    It never fails the collection: a problem is logged and the next collection's pass retries.
    """
    budget = settings.retention_budget_seconds if budget_seconds is None else min(
        budget_seconds, settings.retention_budget_seconds)
    if budget <= 0:
        log.info("retention skipped: no time left in this invocation; the next collection runs it")
        return None
    try:
        result = apply_retention(settings, clock, budget)
    except (StoreError, sqlite3.Error, OSError) as exc:
        log.error("retention after the collection failed: %s; the next collection retries it", exc)
        return None
    if result.hours_rolled_up or result.deleted_rows:
        log.info("retention: %d hours rolled up, %d rows deleted in %.2fs%s", result.hours_rolled_up,
                 result.deleted_rows, result.seconds,
                 "" if result.complete else " (budget used up, continues next run)")
    return result


class _Pacer:
    """Sizes batches so each write transaction stays near TARGET_BATCH_SECONDS, then pauses as long."""

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self.rows = min(max_rows, FIRST_BATCH_ROWS)

    @contextmanager
    def write(self, conn: Connection) -> Iterator[Connection]:
        started = time.perf_counter()
        with transaction(conn):
            yield conn
        seconds = time.perf_counter() - started
        if seconds > TARGET_BATCH_SECONDS:
            self.rows = max(MIN_BATCH_ROWS, self.rows // 2)
        elif seconds < TARGET_BATCH_SECONDS / 4:
            self.rows = min(self.max_rows, self.rows * 2)
        time.sleep(seconds)  # leave the lock free for a waiting collection at least half the time


ROLLUP_COLUMNS = (
    "container_id", "hour", "last_ts", "samples", "cpu_request_millicores", "cpu_limit_millicores",
    "memory_request_bytes", "memory_limit_bytes", "cpu_usage_samples", "cpu_usage_sum_millicores",
    "cpu_usage_max_millicores", "cpu_usage_p95_millicores", "cpu_requested_sum_millicores", "cpu_usage_histogram",
    "memory_working_set_samples", "memory_working_set_sum_bytes", "memory_working_set_max_bytes",
    "memory_requested_sum_bytes", "cpu_throttled_ratio_max", "restart_count_max", "oom_events_sum",
    "oom_killed_samples", *WEIGHTED,
)
_INSERT_ROLLUP = (f"INSERT INTO hourly_rollups ({', '.join(ROLLUP_COLUMNS)})"
                  f" VALUES ({', '.join('?' * len(ROLLUP_COLUMNS))})")

# Each delete: (probe: is there anything to do?, batch: delete up to :rows of it).
# A sample's time is its run's started_at (whole seconds: the same range); runs with an id below the
# oldest run that has samples have none, so only the runs from there on are looked into (by id, not
# through runs_started: that would go through every run kept, for RETENTION_HOURLY_DAYS).
_OLD_SAMPLES_OF = ("FROM runs r CROSS JOIN samples s ON s.run_id = r.id"
                   " WHERE +r.started_at < :before AND r.id >= (SELECT MIN(run_id) FROM samples)")
_OLD_SAMPLES = (
    f"SELECT 1 {_OLD_SAMPLES_OF} LIMIT 1",
    f"DELETE FROM samples WHERE (run_id, span_id) IN (SELECT s.run_id, s.span_id {_OLD_SAMPLES_OF} LIMIT :rows)",
)
_OLD_NODE_SAMPLES_SELECT = (
    "FROM node_samples ns JOIN runs r ON r.id = ns.run_id"
    " WHERE ns.run_id <= (SELECT MAX(id) FROM runs WHERE started_at < :before) AND r.started_at < :before"
)
_OLD_NODE_SAMPLES = (
    f"SELECT 1 {_OLD_NODE_SAMPLES_SELECT} LIMIT 1",
    f"DELETE FROM node_samples WHERE (run_id, node_id) IN (SELECT ns.run_id, ns.node_id {_OLD_NODE_SAMPLES_SELECT}"
    " LIMIT :rows)",
)
# What each run saw of HPAs goes with the raw samples (hpa_samples and hpa_listings are keyed by run id).
_OLD_HPA_SAMPLES_SELECT = "FROM hpa_samples WHERE run_id <= (SELECT MAX(id) FROM runs WHERE started_at < :before)"
_OLD_HPA_SAMPLES = (
    f"SELECT 1 {_OLD_HPA_SAMPLES_SELECT} LIMIT 1",
    f"DELETE FROM hpa_samples WHERE (run_id, hpa_id) IN (SELECT run_id, hpa_id {_OLD_HPA_SAMPLES_SELECT} LIMIT :rows)",
)
_OLD_HPA_LISTINGS_SELECT = "FROM hpa_listings WHERE run_id <= (SELECT MAX(id) FROM runs WHERE started_at < :before)"
_OLD_HPA_LISTINGS = (
    f"SELECT 1 {_OLD_HPA_LISTINGS_SELECT} LIMIT 1",
    f"DELETE FROM hpa_listings WHERE run_id IN (SELECT run_id {_OLD_HPA_LISTINGS_SELECT} LIMIT :rows)",
)
_OLD_RUNS_SELECT = (
    "FROM runs r WHERE started_at < :before AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.run_id = r.id)"
    " AND NOT EXISTS (SELECT 1 FROM node_samples ns WHERE ns.run_id = r.id)"
)
_OLD_RUNS = (
    f"SELECT 1 {_OLD_RUNS_SELECT} LIMIT 1",
    f"DELETE FROM runs WHERE id IN (SELECT id {_OLD_RUNS_SELECT} LIMIT :rows)",
)
_OLD_ROLLUPS = (
    "SELECT 1 FROM hourly_rollups WHERE hour < :before LIMIT 1",
    "DELETE FROM hourly_rollups WHERE (container_id, hour) IN"
    " (SELECT container_id, hour FROM hourly_rollups WHERE hour < :before LIMIT :rows)",
)
_OLD_HOURS_COVERED = (
    "SELECT 1 FROM hourly_coverage WHERE hour < :before LIMIT 1",
    "DELETE FROM hourly_coverage WHERE (hour, namespaces) IN"
    " (SELECT hour, namespaces FROM hourly_coverage WHERE hour < :before LIMIT :rows)",
)
# Release 2's samples, every row moved into spans and lean samples by migration 4, renamed aside in its
# last transaction rather than dropped there (freeing a gigabyte of pages would hold the write lock for
# seconds): deleted by retention like any old rows.
_MOVED_SAMPLES = (
    f"SELECT 1 FROM {MOVED_SAMPLES} LIMIT 1",
    f"DELETE FROM {MOVED_SAMPLES} WHERE (run_id, pod_id, container_id) IN"
    f" (SELECT run_id, pod_id, container_id FROM {MOVED_SAMPLES} LIMIT :rows)",
)
# Identities nothing refers to: (table, condition). The condition is checked again in the deleting
# transaction, so an identity a collection has just started to use again is kept.
# A span's samples are in runs from its first to its last: one that ends before the oldest run with
# samples has none left (and when no sample is left, none has).
_UNUSED_SPANS = (
    "container_spans",
    "last_run_id < COALESCE((SELECT MIN(run_id) FROM samples), last_run_id + 1)",
)
_UNUSED_PODS = (
    "pods",
    "NOT EXISTS (SELECT 1 FROM container_spans cs WHERE cs.pod_id = pods.id)",
)
_UNUSED_CONTAINERS = (
    "containers",
    "NOT EXISTS (SELECT 1 FROM container_spans cs WHERE cs.container_id = containers.id)"
    " AND NOT EXISTS (SELECT 1 FROM hourly_rollups h WHERE h.container_id = containers.id)"
    " AND NOT EXISTS (SELECT 1 FROM daily_rollups d WHERE d.container_id = containers.id)",
)
_UNUSED_WORKLOADS = (
    "workloads",
    "id NOT IN (SELECT workload_id FROM containers) AND id NOT IN (SELECT workload_id FROM pods)",
)
_UNUSED_HPA_SPECS = ("hpa_specs", "id NOT IN (SELECT spec_id FROM hpa_samples)")
_UNUSED_HPAS = ("hpas", "id NOT IN (SELECT hpa_id FROM hpa_specs)")
_UNUSED_NODES = (
    "nodes",
    "id NOT IN (SELECT node_id FROM node_samples) AND id NOT IN (SELECT node_id FROM pods WHERE node_id IS NOT NULL)",
)


# The time of the oldest sample from `watermark` on: the first run in time from there that has samples.
_FIRST_SAMPLE_TS = ("SELECT CAST(started_at AS INTEGER) FROM runs r WHERE started_at >= ?"
                    " AND EXISTS (SELECT 1 FROM samples s WHERE s.run_id = r.id) ORDER BY started_at LIMIT 1")


class _Pass:
    """One retention pass over an open connection."""

    def __init__(self, conn: Connection, limits: Cutoffs, deadline: Deadline, pacer: _Pacer,
                 now: float, daily_retention_days: int):
        self.conn, self.limits, self.deadline, self.pacer = conn, limits, deadline, pacer
        self.now, self.daily_retention_days = now, daily_retention_days
        self.result = RetentionResult()

    def run(self) -> RetentionResult:
        """Fold new samples into the daily rollups, roll old hours up, then delete what is rolled up.

        Raw samples the fold has not added yet are kept, so day rows never miss a sample: a fold cut
        short by the budget only delays the deletion (a fold adds runs far faster than they come).
        """
        r = self.result
        folded = fold_samples(self.conn, self.now, self.daily_retention_days, self.deadline)
        r.complete = r.complete and folded.complete
        self._roll_up()
        raw_before = min(self.limits.raw_before, hourly_watermark(self.conn))
        unfolded = oldest_unfolded_ts(self.conn)
        if unfolded is not None:
            raw_before = min(raw_before, unfolded)
        if is_postgres(self.conn):  # whole days at once: their partitions (shared/store/postgres.py)
            from shared.store.postgres import drop_sample_partitions

            with self.pacer.write(self.conn):
                r.samples_deleted += drop_sample_partitions(self.conn, raw_before)  # type: ignore[arg-type]
        r.samples_deleted += self._delete(_OLD_SAMPLES, raw_before)
        r.node_samples_deleted = self._delete(_OLD_NODE_SAMPLES, raw_before)
        r.hpa_rows_deleted = self._delete(_OLD_HPA_SAMPLES, raw_before) + self._delete(_OLD_HPA_LISTINGS, raw_before)
        r.rollups_deleted = self._delete(_OLD_ROLLUPS, self.limits.hourly_before)
        self._delete(_OLD_HOURS_COVERED, self.limits.hourly_before)  # a row per hour: not counted as rollups
        if self._moved_samples_left():  # they refer to runs and identities: those wait until they are gone
            return r
        r.runs_deleted = self._delete(_OLD_RUNS, self.limits.hourly_before)
        if r.hpa_rows_deleted:
            with self._foreign_keys_off():  # nothing refers to a declaration no sample names, nor to its HPA then
                r.hpa_rows_deleted += self._delete_unreferenced(*_UNUSED_HPA_SPECS)
                r.hpa_rows_deleted += self._delete_unreferenced(*_UNUSED_HPAS)
        if r.samples_deleted or r.node_samples_deleted or r.rollups_deleted or r.runs_deleted:
            with self._foreign_keys_off():
                r.spans_deleted = self._delete_unreferenced(*_UNUSED_SPANS)
            # checked by the foreign keys too: every table referring to pods and containers has an index on them
            r.pods_deleted = self._delete_unreferenced(*_UNUSED_PODS)
            r.containers_deleted = self._delete_unreferenced(*_UNUSED_CONTAINERS)
            with self._foreign_keys_off():
                r.workloads_deleted = self._delete_unreferenced(*_UNUSED_WORKLOADS)
                r.nodes_deleted = self._delete_unreferenced(*_UNUSED_NODES)
        return r

    def _moved_samples_left(self) -> bool:
        """Delete release 2's samples table that migration 4 left aside (every row moved), in batches, then
        the table; whether some of it is still there (the time budget ran out). Never on PostgreSQL."""
        if is_postgres(self.conn) or not self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MOVED_SAMPLES,)).fetchone():
            return False
        self.result.samples_deleted += self._delete(_MOVED_SAMPLES, 0)
        if self.conn.execute(_MOVED_SAMPLES[0]).fetchone():
            return True
        with self.pacer.write(self.conn):
            self.conn.execute(f"DROP TABLE IF EXISTS {MOVED_SAMPLES}")  # empty: freeing its pages is quick
        return False

    def _roll_up(self) -> None:
        """Roll up every complete hour of raw samples before the raw cutoff, oldest first."""
        while True:
            watermark = hourly_watermark(self.conn)
            first = self.conn.execute(_FIRST_SAMPLE_TS, (watermark,)).fetchone()
            if first is None or first[0] >= self.limits.raw_before or self._out_of_time():
                return
            hour = hour_floor(first[0])
            rows = [_rollup_row(hour, figures) for figures in raw_usage(self.conn, hour, hour + HOUR_SECONDS).values()]
            with self.pacer.write(self.conn):
                rolled_up_to = hourly_watermark(self.conn)
                if rolled_up_to <= hour:  # else another pass rolled this hour up meanwhile
                    self.conn.executemany(_INSERT_ROLLUP, rows)
                    record_hours(self.conn, rolled_up_to, hour + HOUR_SECONDS)  # and the hours without samples
                    self.result.hours_rolled_up += 1
                    self.result.rollup_rows += len(rows)

    def _delete(self, statements: tuple[str, str], before: int) -> int:
        """Delete in batches while the probe finds rows; the number deleted."""
        probe, batch = statements
        deleted = 0
        while self.conn.execute(probe, {"before": before}).fetchone() and not self._out_of_time():
            with self.pacer.write(self.conn):
                deleted += self.conn.execute(batch, {"before": before, "rows": self.pacer.rows}).rowcount
        return deleted

    def _delete_unreferenced(self, table: str, condition: str) -> int:
        """Find candidates without the write lock, then delete them in batches, checking again."""
        ids = [row[0] for row in self.conn.execute(f"SELECT id FROM {table} WHERE {condition}")]
        deleted = 0
        while ids and not self._out_of_time():
            chunk, ids = ids[:self.pacer.rows], ids[self.pacer.rows:]
            with self.pacer.write(self.conn):
                deleted += self.conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?)) AND {condition}",
                    (json.dumps(chunk),),
                ).rowcount
        return deleted

    def _out_of_time(self) -> bool:
        if self.deadline.remaining() > 0:
            return False
        self.result.complete = False
        return True

    @contextmanager
    def _foreign_keys_off(self) -> Iterator[None]:
        """Checking span, workload and node deletions would scan big tables per row (there is no index
        on samples.span_id, pods.workload_id, node_samples.node_id): each of these deletions' own
        condition guarantees that nothing refers to the rows it removes. PostgreSQL checks them through
        indexes its schema has for that (foreign keys are not a session's to switch off there)."""
        if is_postgres(self.conn):
            yield
            return
        self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA foreign_keys = ON")


def _rollup_row(hour: int, figures: dict) -> tuple:
    """An hourly rollup row from the hour's figures (shared/store/daily_rollups.py raw_usage)."""
    values = sorted(figures.pop("cpu_values"))
    row = {**figures, "hour": hour, "cpu_usage_p95_millicores": nearest_rank(values, 95),
           "cpu_usage_histogram": to_blob(pack_values(values))}
    return tuple(row[name] for name in ROLLUP_COLUMNS)
