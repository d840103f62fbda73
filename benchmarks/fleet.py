"""Benchmark a fleet in one PostgreSQL: many clusters' runs written through the store, then their reports.

Synthetic runs (benchmarks/synthetic.py) of `--containers` containers every 5 minutes for `--hours`
hours, for each of `--clusters` clusters, written through shared/store/runs.py (COPY on PostgreSQL,
executemany on SQLite) in the order a fleet's collectors would: each 5-minute tick, every cluster
once. Then each cluster's retention pass (fold into day rows, roll hours up), and the reads:

  seconds per run stored (median and p95), one cluster's report over 7 days (the report function's
  default JSON: 100 containers), the fleet summary over 30 days (one row per cluster) computed cluster
  by cluster, what computing and storing each cluster's totals adds to the collection that does it
  (hourly), the fleet summary read from them (what the fleet page does), and the bytes per container per day (the
  cluster's schema's tables and indexes, or the SQLite file), measured over the hours written and
  scaled to a day.

PostgreSQL is Debian's server started here with its default durability (fsync on, synchronous
commit), on 127.0.0.1, in a temporary directory (as the `postgres` user when root), unless
`--database-url` names one. The same figures for SQLite with one cluster follow.

    python benchmarks/fleet.py --clusters 20 --containers 5000 --hours 24
    python benchmarks/fleet.py --clusters 20 --containers 5000 --hours 4   # what a short session allows
    python benchmarks/fleet.py --database-url postgresql://... --reads-only   # the reads again, same data
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.synthetic import store_synthetic_run, synthetic_inventory  # noqa: E402
from shared.core.settings import Settings, load_settings  # noqa: E402
from shared.domain.report import fleet as fleet_module  # noqa: E402
from shared.domain.report.build import build_report  # noqa: E402
from shared.domain.report.fleet import build_fleet  # noqa: E402
from shared.domain.report.query import parse_report_query  # noqa: E402
from shared.domain.report.stored_totals import fleet_windows, refresh_fleet_totals  # noqa: E402
from shared.sources.inventory import Inventory  # noqa: E402
from shared.store.connection import is_postgres, open_store, transaction  # noqa: E402
from shared.store.report_totals import keep_windows  # noqa: E402
from shared.store.retention import apply_retention  # noqa: E402
from shared.store.size import stored_bytes  # noqa: E402

STEP_SECONDS = 300
CONTAINERS_PER_POD = 1.5  # synthetic_inventory: every other workload's pods have a sidecar


@contextlib.contextmanager
def durable_postgres() -> Iterator[str]:
    """Debian's PostgreSQL with its default durability, on a free port; its superuser's URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[4]))
    if not found:
        raise SystemExit("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")
    bin_dir = Path(found[-1]).parent
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="k8s-monitor-bench-pg-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        if run_as:
            user = pwd.getpwnam("postgres")
            os.chown(directory, user.pw_uid, user.pw_gid)
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(directory / "data"), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "log"),
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={directory}"
                              " -c shared_buffers=1GB -c max_wal_size=4GB", "-w", "start"],
                       check=True, capture_output=True)
        subprocess.run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-qc",
                        "CREATE DATABASE fleet"], check=True, capture_output=True)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/fleet"
        finally:
            subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(directory / "data"), "-m", "fast", "-w",
                            "stop"], capture_output=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def settings_for(directory: Path, url: str | None, cluster: str) -> Settings:
    values: dict[str, object] = {"database_path": directory / "k8s_metrics.db", "cluster_name": cluster,
                                 "kube_context": None, "kubeconfig": directory / "none", "log_format": "json",
                                 "prometheus_url": "http://127.0.0.1:9", "retention_budget_seconds": 3600}
    if url:
        values["database_url"] = url
    return load_settings(**values)


def measure(clusters: list[Settings], containers: int, hours: float, reads_only: bool = False) -> dict[str, float]:
    """Write the runs and prune (unless `reads_only`: they were written by an earlier run), then time the
    reads; the figures."""
    pods = round(containers / CONTAINERS_PER_POD)
    inventory = synthetic_inventory(pods, nodes=max(3, pods // 30))
    figures = {} if reads_only else write_history(clusters, inventory, hours)
    return figures | read_figures(clusters, inventory.container_count, hours)


def write_history(clusters: list[Settings], inventory: Inventory, hours: float) -> dict[str, float]:
    """Every cluster's runs over `hours`, tick by tick, then each cluster's retention pass; their timings."""
    runs = int(hours * 3600 / STEP_SECONDS)
    start = (time.time() - hours * 3600) // STEP_SECONDS * STEP_SECONDS
    connections = [open_store(settings) for settings in clusters]
    rng = random.Random(7)
    write_seconds = []
    try:
        for tick in range(runs):
            for conn in connections:
                started = time.perf_counter()
                store_synthetic_run(conn, inventory, start + tick * STEP_SECONDS, rng)  # type: ignore[arg-type]
                write_seconds.append(time.perf_counter() - started)
            if tick % 12 == 11:
                print(f"  {tick + 1}/{runs} ticks, {len(write_seconds)} runs, median "
                      f"{statistics.median(write_seconds):.3f}s", file=sys.stderr, flush=True)
        prune_started = time.perf_counter()
        for settings in clusters:
            apply_retention(settings)
        prune_seconds = time.perf_counter() - prune_started
    finally:
        for conn in connections:
            conn.close()
    return {"runs": len(write_seconds), "write_median_s": statistics.median(write_seconds),
            "write_p95_s": sorted(write_seconds)[int(0.95 * (len(write_seconds) - 1))],
            "prune_s_per_cluster": prune_seconds / len(clusters)}


def read_figures(clusters: list[Settings], containers: int, hours: float) -> dict[str, float]:
    """The stored bytes, one cluster's 7-day report, and the fleet summary over 30 days: computed cluster by
    cluster, then as a collection stores its cluster's totals, and read from them."""
    connections = [open_store(settings) for settings in clusters]
    try:
        sizes = [stored_bytes(conn) for conn in connections]
        postgres = is_postgres(connections[0])
        for conn in connections:  # what an earlier run stored: the live figures come first
            with transaction(conn):
                keep_windows(conn, [])
    finally:
        for conn in connections:
            conn.close()
    now = time.time()
    first = clusters[0]
    report_seconds = []
    for _ in range(5):
        conn = open_store(first, readonly=True)
        started = time.perf_counter()
        report = build_report(conn, parse_report_query({"window": "7d"}, first, now), first, now)
        report_seconds.append(time.perf_counter() - started)
        conn.close()
    query = parse_report_query({"window": "30d"}, first, now)
    live_seconds, serial_seconds = [], []
    for workers, seconds in ((1, serial_seconds), (fleet_module.FLEET_WORKERS, live_seconds)):
        default, fleet_module.FLEET_WORKERS = fleet_module.FLEET_WORKERS, workers
        try:
            for _ in range(3):
                started = time.perf_counter()
                live = build_fleet(first, query, now)
                seconds.append(time.perf_counter() - started)
        finally:
            fleet_module.FLEET_WORKERS = default
    store_seconds, store_cpu_seconds = [], []
    for settings in clusters:  # what a collection does after its run when they are due (hourly)
        started, cpu_started = time.perf_counter(), time.process_time()
        assert refresh_fleet_totals(settings, now) == len(fleet_windows(settings, now))
        store_seconds.append(time.perf_counter() - started)
        store_cpu_seconds.append(time.process_time() - cpu_started)
    fleet_seconds = []
    for _ in range(5):
        started = time.perf_counter()
        fleet = build_fleet(first, query, now)
        fleet_seconds.append(time.perf_counter() - started)
    assert report.containers_total > 0  # workload containers: the pods of a workload together
    assert len(fleet.clusters) == len(clusters) and not any(row.error for row in fleet.clusters), fleet.clusters
    assert all(row.totals_computed_at == now for row in fleet.clusters)  # the stored ones, not computed again
    assert [row.totals for row in fleet.clusters] == [row.totals for row in live.clusters]
    return {
        "clusters": len(clusters), "containers": containers,
        "report_7d_s": statistics.median(report_seconds), "fleet_30d_s": statistics.median(fleet_seconds),
        "fleet_30d_live_s": statistics.median(live_seconds), "fleet_30d_serial_s": statistics.median(serial_seconds),
        "store_totals_s": statistics.median(store_seconds), "store_totals_cpu_s": statistics.median(store_cpu_seconds),
        "bytes_per_container_day": statistics.mean(sizes) / containers / (hours / 24),
        "backend": "postgresql" if postgres else "sqlite",
    }


def show(figures: dict[str, float]) -> None:
    print(f"{figures['backend']}: {figures['clusters']} cluster(s) x {figures['containers']} containers")
    if "runs" in figures:
        print(f"  {figures['runs']} runs written: median {figures['write_median_s']:.3f}s, "
              f"p95 {figures['write_p95_s']:.3f}s")
        print(f"  retention pass (fold + rollups): {figures['prune_s_per_cluster']:.2f}s per cluster")
    print(f"  one cluster's 7-day report: {figures['report_7d_s'] * 1000:.0f} ms")
    print(f"  fleet summary over 30 days, from the totals the collections store: "
          f"{figures['fleet_30d_s'] * 1000:.0f} ms")
    print(f"  computing and storing them, per cluster (a collection an hour): {figures['store_totals_s']:.2f}s "
          f"({figures['store_totals_cpu_s']:.2f}s CPU)")
    print(f"  fleet summary over 30 days, every cluster computed: {figures['fleet_30d_live_s'] * 1000:.0f} ms "
          f"(clusters one at a time: {figures['fleet_30d_serial_s'] * 1000:.0f} ms)")
    print(f"  bytes per container per day: {figures['bytes_per_container_day']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--containers", type=int, default=5000)
    parser.add_argument("--hours", type=float, default=24.0, help="history written per cluster (5-minute runs)")
    parser.add_argument("--database-url", help="a PostgreSQL database to use instead of starting one")
    parser.add_argument("--reads-only", action="store_true",
                        help="time the reads of what an earlier run with the same --database-url wrote")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if args.reads_only and not args.database_url:
        parser.error("--reads-only needs --database-url: the database an earlier run wrote")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = args.database_url or stack.enter_context(durable_postgres())
        clusters = [settings_for(Path(tmp), url, f"cluster-{n:02d}") for n in range(args.clusters)]
        show(measure(clusters, args.containers, args.hours, args.reads_only))
        if not args.skip_sqlite and not args.reads_only:
            show(measure([settings_for(Path(tmp) / "sqlite", None, "cluster-00")], args.containers, args.hours))


if __name__ == "__main__":
    main()
