"""How the database grows over weeks of collections with retention on; prints the size per simulated day.

Each run is written straight through shared/store/runs.py (synthetic inventory and usage, a fake clock
advancing one interval per run) and followed by the retention pass a collection runs. Every pod is
replaced once a day, as by a daily rollout, so pods and their identities churn too. The raw samples
level off after RETENTION_RAW_DAYS; the hourly rollups keep growing, by far less, until
RETENTION_HOURLY_DAYS (pass --hourly-days 14 to see them level off within 30 days).

    python benchmarks/growth.py --pods 1000 --days 30
"""

from __future__ import annotations

import argparse
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
from shared.store.connection import connect  # noqa: E402
from shared.store.retention import retention_after_collection  # noqa: E402

DAY = 86_400
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=300, help="seconds between collections (default 300)")
    parser.add_argument("--raw-days", type=int, default=7)
    parser.add_argument("--hourly-days", type=int, default=90)
    parser.add_argument("--nodes", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    settings = load_settings(database_path=workdir / "k8s_metrics.db", retention_raw_days=args.raw_days,
                             retention_hourly_days=args.hourly_days, log_level="WARNING")
    now = [float(int(time.time()) // DAY * DAY - args.days * DAY)]
    rng = random.Random(1)
    conn = connect(settings.database_path)
    runs_per_day = DAY // args.interval
    inventory = synthetic_inventory(args.pods, nodes=args.nodes)
    print(f"{args.pods} pods ({inventory.container_count} containers), {runs_per_day} runs/day, "
          f"raw {args.raw_days} d, hourly {args.hourly_days} d")
    print(f"{'day':>4} {'file MiB':>9} {'wal MiB':>8} {'used MiB':>9} {'samples':>10} {'rollups':>9} "
          f"{'pods':>6} {'runs':>6} {'retention s':>12} {'wall s':>7}")
    started = time.perf_counter()
    for day in range(1, args.days + 1):
        inventory = synthetic_inventory(args.pods, generation=day, nodes=args.nodes)  # a daily rollout
        retention_seconds = 0.0
        for _ in range(runs_per_day):
            store_synthetic_run(conn, inventory, now[0], rng)
            now[0] += args.interval
            result = retention_after_collection(settings, clock=lambda: now[0])
            retention_seconds += result.seconds if result else 0.0
        print(describe_day(conn, settings.database_path, day, retention_seconds, time.perf_counter() - started),
              flush=True)
    conn.close()
    shutil.rmtree(workdir)


def describe_day(conn, database: Path, day: int, retention_seconds: float, wall_seconds: float) -> str:  # type: ignore[no-untyped-def]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    used_pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    wal = database.with_name(database.name + "-wal")
    counts = [conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
              for table in ("samples", "hourly_rollups", "pods", "runs")]
    return (f"{day:>4} {database.stat().st_size / MIB:>9.1f} {(wal.stat().st_size if wal.exists() else 0) / MIB:>8.1f} "
            f"{used_pages * page_size / MIB:>9.1f} {counts[0]:>10} {counts[1]:>9} {counts[2]:>6} {counts[3]:>6} "
            f"{retention_seconds:>12.1f} {wall_seconds:>7.0f}")


if __name__ == "__main__":
    main()
