"""How the database grows over weeks of collections with retention on; prints the size per simulated day.

Each run is written straight through shared/store/runs.py (synthetic inventory and usage, a fake clock
advancing one interval per run) and followed by the retention pass a collection runs. Every pod is
replaced once a day, as by a daily rollout, so pods and their identities churn too. The raw samples
level off after RETENTION_RAW_DAYS; the hourly rollups keep growing, by far less, until
RETENTION_HOURLY_DAYS (pass --hourly-days 14 to see them level off within 30 days).

With --baseline REV the same days are written by this code and by the code of commit REV (checked
out into a temporary directory), side by side in two processes, and the table shows both.

    python benchmarks/growth.py --pods 1000 --days 30 [--baseline main]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from benchmarks.baseline import checkout, child_command, use_code  # noqa: E402

DAY = 86_400
MIB = 1024 * 1024
FIGURES = ("file MiB", "wal MiB", "used MiB", "samples", "rollups", "pods", "runs", "retention s", "wall s")


def grow(args: argparse.Namespace, report) -> None:  # type: ignore[no-untyped-def]
    """Write the days, calling `report(day, figures)` after each."""
    from benchmarks.synthetic import store_synthetic_run, synthetic_inventory
    from shared.core.settings import load_settings
    from shared.store.connection import connect
    from shared.store.retention import retention_after_collection

    workdir = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    settings = load_settings(database_path=workdir / "k8s_metrics.db", retention_raw_days=args.raw_days,
                             retention_hourly_days=args.hourly_days, log_level="WARNING")
    now = [float(int(time.time()) // DAY * DAY - args.days * DAY)]
    rng = random.Random(1)
    conn = connect(settings.database_path)
    started = time.perf_counter()
    for day in range(1, args.days + 1):
        inventory = synthetic_inventory(args.pods, generation=day, nodes=args.nodes)  # a daily rollout
        retention_seconds = 0.0
        for _ in range(DAY // args.interval):
            store_synthetic_run(conn, inventory, now[0], rng)
            now[0] += args.interval
            result = retention_after_collection(settings, clock=lambda: now[0])
            retention_seconds += result.seconds if result else 0.0
        report(day, describe_day(conn, settings.database_path, retention_seconds, time.perf_counter() - started))
    conn.close()
    shutil.rmtree(workdir)


def describe_day(conn, database: Path, retention_seconds: float, wall_seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    used_pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    wal = database.with_name(database.name + "-wal")
    counts = [conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
              for table in ("samples", "hourly_rollups", "pods", "runs")]
    return [database.stat().st_size / MIB, (wal.stat().st_size if wal.exists() else 0) / MIB,
            used_pages * page_size / MIB, *counts, retention_seconds, wall_seconds]


def _row(day: int, figures: list[float]) -> str:
    file, wal, used, samples, rollups, pods, runs, retention, wall = figures
    return (f"{day:>4} {file:>9.1f} {wal:>8.1f} {used:>9.1f} {samples:>10.0f} {rollups:>9.0f} {pods:>6.0f} "
            f"{runs:>6.0f} {retention:>12.1f} {wall:>7.0f}")


def compare(args: argparse.Namespace, argv: list[str]) -> None:
    """This code and the baseline's, in two processes at once; one line per day with both sizes."""
    script = Path(__file__).resolve()
    with checkout(args.baseline) as old_code:
        sides = {name: subprocess.Popen(child_command(script, code, *argv), stdout=subprocess.PIPE, text=True)
                 for name, code in (("baseline", old_code), ("this", script.parent.parent))}
        print(f"{'day':>4} {'baseline MiB':>13} {'this MiB':>9} {'this/baseline':>14} {'baseline samples':>17} "
              f"{'this samples':>13} {'baseline wall s':>16} {'this wall s':>12}  (file + WAL)")
        for old_line, new_line in zip(sides["baseline"].stdout, sides["this"].stdout):  # type: ignore[arg-type]
            day, old = json.loads(old_line)
            _, new = json.loads(new_line)
            old_total, new_total = old[0] + old[1], new[0] + new[1]
            print(f"{day:>4} {old_total:>13.1f} {new_total:>9.1f} {new_total / old_total:>14.1%} {old[3]:>17.0f} "
                  f"{new[3]:>13.0f} {old[8]:>16.0f} {new[8]:>12.0f}", flush=True)
        for process in sides.values():
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=300, help="seconds between collections (default 300)")
    parser.add_argument("--raw-days", type=int, default=7)
    parser.add_argument("--hourly-days", type=int, default=90)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--baseline", help="also run the code of this commit, side by side")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # a child: run the code of this checkout, print JSON
    args = parser.parse_args()
    if args.baseline:
        argv = [arg for arg in sys.argv[1:] if not arg.startswith("--baseline")]
        if args.baseline in argv:
            argv.remove(args.baseline)
        compare(args, argv)
    elif args.code:
        use_code(args.code)
        grow(args, lambda day, figures: print(json.dumps([day, figures]), flush=True))
    else:
        print(f"{args.pods} pods, {DAY // args.interval} runs/day, raw {args.raw_days} d, hourly {args.hourly_days} d")
        print(f"{'day':>4} {'file MiB':>9} {'wal MiB':>8} {'used MiB':>9} {'samples':>10} {'rollups':>9} "
              f"{'pods':>6} {'runs':>6} {'retention s':>12} {'wall s':>7}")
        grow(args, lambda day, figures: print(_row(day, figures), flush=True))


if __name__ == "__main__":
    main()
