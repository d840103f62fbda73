"""Backup and restore of a database of a few hundred MB: duration, size, and a writer's pauses meanwhile.

Builds `--days` of 5-minute runs of a `--pods` cluster (written straight through shared/store/runs.py),
then takes a backup while a writer process keeps storing small collections, and restores it.

    python benchmarks/backup.py --pods 1000 --days 7
    python benchmarks/backup.py --database /tmp/kept.db   # reuse a database built before
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from benchmarks.synthetic import store_synthetic_run, synthetic_inventory  # noqa: E402
from shared.core.settings import load_settings  # noqa: E402
from shared.ops.backup import run_backup  # noqa: E402
from shared.ops.restore import restore_backup  # noqa: E402
from shared.store.connection import connect  # noqa: E402

DAY = 86_400
INTERVAL = 300
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--database", type=Path, help="build here once and reuse it on later runs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    database = args.database or workdir / "k8s_metrics.db"
    if not database.exists():
        build(database, args.pods, args.days)
    settings = load_settings(database_path=database, backup_dir=workdir / "backups", log_level="WARNING")
    size = database.stat().st_size

    stop = multiprocessing.Event()
    results: multiprocessing.Queue = multiprocessing.Queue()
    writer = multiprocessing.Process(target=write_continuously, args=(database, stop, results))
    writer.start()
    time.sleep(1.0)
    started = time.perf_counter()
    outcome = run_backup(settings)
    backup_seconds = time.perf_counter() - started
    stop.set()
    writes = results.get()
    writer.join()
    if outcome.backup is None:
        raise SystemExit(f"backup failed: {outcome.error}")
    info = outcome.backup
    print(f"database {size / MIB:.0f} MiB -> backup {info.size_bytes / MIB:.1f} MiB "
          f"({size / info.size_bytes:.1f}x smaller) in {backup_seconds:.1f}s ({size / MIB / backup_seconds:.0f} MiB/s)")
    print(f"writer during the backup: {len(writes)} runs stored, slowest {max(writes) * 1000:.1f} ms, "
          f"median {sorted(writes)[len(writes) // 2] * 1000:.1f} ms")

    restored = load_settings(database_path=workdir / "restored" / "k8s_metrics.db", backup_dir=settings.backup_dir,
                             log_level="WARNING")
    started = time.perf_counter()
    result = restore_backup(restored, settings.backup_dir / info.file)
    print(f"restore (verify checksum, unpack, integrity_check, swap in): {time.perf_counter() - started:.1f}s, "
          f"{result.runs} runs")
    shutil.rmtree(workdir)


def build(database: Path, pods: int, days: int) -> None:
    conn = connect(database)
    rng = random.Random(1)
    runs = days * DAY // INTERVAL
    end = time.time() // DAY * DAY
    started = time.perf_counter()
    for number in range(runs):
        if number % (DAY // INTERVAL) == 0:
            inventory = synthetic_inventory(pods, generation=number // (DAY // INTERVAL), nodes=50)
        store_synthetic_run(conn, inventory, end - (runs - number) * INTERVAL, rng)
    conn.close()
    print(f"built {database}: {runs} runs, {database.stat().st_size / MIB:.0f} MiB "
          f"in {time.perf_counter() - started:.0f}s")


def write_continuously(database: Path, stop, results) -> None:  # type: ignore[no-untyped-def]
    """A collection-like writer storing a 50-pod run every 50 ms; the duration of each store."""
    conn = connect(database)
    rng, inventory = random.Random(2), synthetic_inventory(50, generation=10_000)
    durations, at = [], time.time()
    while not stop.is_set():
        started = time.perf_counter()
        store_synthetic_run(conn, inventory, at, rng)
        durations.append(time.perf_counter() - started)
        at += 1
        time.sleep(0.05)
    conn.close()
    results.put(durations)


if __name__ == "__main__":
    main()
