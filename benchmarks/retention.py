"""How long a concurrent writer (and reader) waits while retention rotates millions of rows.

Builds a database of `--days` of 5-minute runs (written straight through shared/store/runs.py), then
runs one retention pass that rolls up and deletes everything older than RETENTION_RAW_DAYS while a
writer process keeps writing small collections and a reader process keeps querying, each in its own
process like the monitor's functions. Prints the writer's wait for the write lock (BEGIN IMMEDIATE),
the duration of its whole writes, and the reader's query times, during retention and before it.

    python benchmarks/retention.py --pods 2000 --days 9
    python benchmarks/retention.py --database /tmp/kept.db   # reuse (a copy of) a database built before
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from benchmarks.synthetic import store_synthetic_run, synthetic_inventory  # noqa: E402
from shared.core.settings import load_settings  # noqa: E402
from shared.store.connection import connect  # noqa: E402
from shared.store.retention import apply_retention  # noqa: E402

DAY = 86_400
INTERVAL = 300
BASELINE_SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--days", type=int, default=9, help="days of history (default 9: 2 days to rotate)")
    parser.add_argument("--raw-days", type=int, default=7)
    parser.add_argument("--batch-rows", type=int, default=5000, help="RETENTION_BATCH_ROWS (default 5000)")
    parser.add_argument("--database", type=Path, help="build here once and reuse a copy on later runs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    database = workdir / "k8s_metrics.db"
    end = float(int(time.time()) // DAY * DAY)
    source = args.database or database
    if not source.exists():
        build(source, args.pods, args.days, end)
    if source != database:
        shutil.copy(source, database)
    settings = load_settings(database_path=database, retention_raw_days=args.raw_days,
                             retention_batch_rows=args.batch_rows, log_level="WARNING")
    end = newest_run(database) + INTERVAL

    stop = multiprocessing.Event()
    results: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=target, args=(database, end, stop, results))
               for target in (write_continuously, read_continuously)]
    for worker in workers:
        worker.start()
    time.sleep(BASELINE_SECONDS)
    started = time.monotonic()
    result = apply_retention(settings, clock=lambda: end)
    finished = time.monotonic()
    time.sleep(0.5)
    stop.set()
    measured = dict(results.get() for _ in workers)
    for worker in workers:
        worker.join()

    rows = result.samples_deleted + result.node_samples_deleted
    print(f"retention: {result.seconds:.1f}s, {result.hours_rolled_up} hours rolled up into {result.rollup_rows} rows, "
          f"{result.samples_deleted} samples + {result.node_samples_deleted} node samples deleted "
          f"({rows / result.seconds:,.0f} rows/s), {result.runs_deleted} runs, {result.pods_deleted} pods deleted")
    for name, unit in (("lock wait", "writer"), ("write", "writer"), ("query", "reader")):
        during = [s for t, kind, s in measured[unit] if kind == name and started <= t <= finished]
        before = [s for t, kind, s in measured[unit] if kind == name and t < started]
        print(f"{unit} {name:9}: during retention {describe(during)}; before it {describe(before)}")
    shutil.rmtree(workdir)


def build(database: Path, pods: int, days: int, end: float) -> None:
    conn = connect(database)
    rng = random.Random(1)
    runs = days * DAY // INTERVAL
    started = time.perf_counter()
    for number in range(runs):
        if number % (DAY // INTERVAL) == 0:
            inventory = synthetic_inventory(pods, generation=number // (DAY // INTERVAL), nodes=100)
        store_synthetic_run(conn, inventory, end - (runs - number) * INTERVAL, rng)
    samples = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    conn.close()
    print(f"built {database}: {runs} runs, {samples:,} samples, {database.stat().st_size / 2**20:.0f} MiB "
          f"in {time.perf_counter() - started:.0f}s")


def newest_run(database: Path) -> float:
    conn = connect(database)
    try:
        return conn.execute("SELECT MAX(started_at) FROM runs").fetchone()[0]
    finally:
        conn.close()


def write_continuously(database: Path, end: float, stop, results) -> None:  # type: ignore[no-untyped-def]
    """A collection-like writer: alternately takes the write lock alone, and stores a 50-pod run."""
    conn = connect(database)
    rng, inventory = random.Random(2), synthetic_inventory(50, generation=10_000)
    measured, at = [], end
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        measured.append((time.monotonic(), "lock wait", time.perf_counter() - started))
        conn.execute("ROLLBACK")
        started = time.perf_counter()
        store_synthetic_run(conn, inventory, at, rng)
        measured.append((time.monotonic(), "write", time.perf_counter() - started))
        at += 1
        time.sleep(0.01)
    conn.close()
    results.put(("writer", measured))


def read_continuously(database: Path, end: float, stop, results) -> None:  # type: ignore[no-untyped-def]
    """A report-like reader: the newest hour of one container's samples, over and over."""
    conn = connect(database, readonly=True)
    measured = []
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("SELECT COUNT(*), AVG(cpu_usage_avg_millicores) FROM samples WHERE container_id = 1 AND ts > ?",
                     (end - 3600,)).fetchone()
        measured.append((time.monotonic(), "query", time.perf_counter() - started))
        time.sleep(0.01)
    conn.close()
    results.put(("reader", measured))


def describe(seconds: list[float]) -> str:
    if not seconds:
        return "no samples"
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"n={len(ordered)} median {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
