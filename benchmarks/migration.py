"""Migration 4 (spans) on a database the previous release wrote: how long it takes, how long a writer waits meanwhile,
what it does to the file's size, and that the reports read the same before and after.

With the code of --baseline (checked out into a temporary directory: the previous schema and write path)
a child process writes --days of 5-minute runs of --pods pods, replaced daily, with a retention pass
(folds, rollups) at the end, and reads the reports. Then this code opens the file: it copies it beside
itself and migrates it, while another process keeps asking for the write lock (BEGIN IMMEDIATE, then
ROLLBACK) as a collection would; then it reads the same reports and compares them, and runs a
retention pass, which deletes the old samples table the migration left aside, in batches.

    PYTHONPATH=. .venv/bin/python benchmarks/migration.py --pods 5000 --days 4 --baseline main
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from benchmarks.baseline import checkout, child_command, use_code  # noqa: E402

DAY = 86_400
INTERVAL = 300
WINDOWS = ("7d", "2d", "6h")


def build_and_read(database: Path, pods: int, days: int) -> None:
    """(the child, on the baseline's code) Write the history, run retention once, print the reports as JSON."""
    from benchmarks.synthetic import store_synthetic_run, synthetic_inventory
    from shared.store.connection import connect
    from shared.store.retention import apply_retention

    end = float(int(time.time()) // INTERVAL * INTERVAL)
    runs = days * DAY // INTERVAL
    conn = connect(database)
    rng = random.Random(1)
    started = time.perf_counter()
    for number in range(runs):
        if number % (DAY // INTERVAL) == 0:
            inventory = synthetic_inventory(pods, generation=number // (DAY // INTERVAL), nodes=100)
        store_synthetic_run(conn, inventory, end - (runs - number) * INTERVAL, rng)
    conn.close()
    settings = _settings(database)
    apply_retention(settings, clock=lambda: end)
    print(json.dumps({"end": end, "build_seconds": time.perf_counter() - started, "reports": reports(settings, end)}))


def _settings(database: Path):  # type: ignore[no-untyped-def]
    from shared.core.settings import load_settings

    return load_settings(database_path=database, retention_raw_days=7, log_level="WARNING", report_window_days=7)


def reports(settings, now: float) -> dict:  # type: ignore[no-untyped-def]
    from shared.domain.report.build import build_report
    from shared.domain.report.output import report_json
    from shared.domain.report.query import parse_report_query
    from shared.store.connection import connect

    conn = connect(settings.database_path, readonly=True)
    bodies = {}
    for window in WINDOWS:
        body = report_json(build_report(conn, parse_report_query({"window": window, "limit": "all"}, settings, now),
                                        settings, now))
        bodies[window] = {k: v for k, v in body.items() if k != "generated_at"}
    conn.close()
    return bodies


def ask_for_the_lock(database: Path, stop, results) -> None:  # type: ignore[no-untyped-def]
    """A writer of the new release waiting to write: takes the write lock and lets it go, over and over."""
    conn = sqlite3.connect(database, timeout=600, isolation_level=None)
    waits = []
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        waits.append(time.perf_counter() - started)
        conn.execute("ROLLBACK")
        time.sleep(0.01)
    conn.close()
    results.put(waits)


def while_a_writer_waits(database: Path, work) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Do `work()` while another process asks for the write lock; (seconds, the writer's waits)."""
    stop, results = multiprocessing.Event(), multiprocessing.Queue()
    writer = multiprocessing.Process(target=ask_for_the_lock, args=(database, stop, results))
    writer.start()
    time.sleep(1)
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    stop.set()
    waits = results.get()
    writer.join()
    return seconds, waits


def file_pages(database: Path) -> str:
    conn = sqlite3.connect(database)
    pages, free, page_size = (conn.execute(f"PRAGMA {name}").fetchone()[0]
                              for name in ("page_count", "freelist_count", "page_size"))
    conn.close()
    return (f"file {pages * page_size / 2**20:,.0f} MiB, of which {free * page_size / 2**20:,.0f} MiB free pages "
            f"(reused as it grows)")


def waited(waits: list[float]) -> str:
    return f"a writer waited for the lock: n={len(waits)} median {statistics.median(waits) * 1000:.0f} ms, " \
           f"max {max(waits) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--baseline", default="main", help="the commit whose schema is migrated (default main)")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # a child: build with the code of this checkout
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.code:
        use_code(args.code)
        build_and_read(args.database, args.pods, args.days)
        return
    import logging

    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="bench-migration-"))
    database = workdir / "k8s_metrics.db"
    try:
        with checkout(args.baseline) as old_code:
            built = subprocess.run(child_command(Path(__file__).resolve(), old_code, "--pods", str(args.pods),
                                                 "--days", str(args.days), "--database", str(database)),
                                   check=True, capture_output=True, text=True)
        before = json.loads(built.stdout)
        conn = sqlite3.connect(database)
        samples = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size = database.stat().st_size
        print(f"built by {args.baseline} in {before['build_seconds']:.0f}s: {samples:,} samples, "
              f"{size / 2**20:,.0f} MiB")
        from shared.store.connection import connect
        from shared.store.retention import apply_retention

        seconds, waits = while_a_writer_waits(database, lambda: connect(database).close())
        conn = sqlite3.connect(database)
        spans = conn.execute("SELECT COUNT(*) FROM container_spans").fetchone()[0]
        conn.close()
        print(f"migrated in {seconds:.1f}s (copy included): {samples / seconds:,.0f} samples/s, {spans:,} spans; "
              f"{file_pages(database)}")
        print(waited(waits))
        after = reports(_settings(database), before["end"])
        same = {window: after[window] == before["reports"][window] for window in WINDOWS}
        print(f"reports the same after the migration: {same}")
        passes: list = []
        seconds, waits = while_a_writer_waits(database, lambda: passes.append(
            apply_retention(_settings(database), clock=lambda: before["end"])))
        print(f"then a retention pass deleted the {passes[0].samples_deleted:,} moved samples in {seconds:.1f}s; "
              f"{waited(waits)}; {file_pages(database)}")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
