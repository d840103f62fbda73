"""Bytes stored and seconds spent writing per collection run, of this code and of a baseline commit.

Each side writes runs of the same synthetic cluster (`--pods`, a container or two each; the usage
differs from run to run, requests and limits do not) through its own shared/store/runs.py into a
fresh database, in a process of its own; with --simulator each side collects the simulator's
cluster instead (its own simulator process, the same seed), through the whole collection. The two
sides take turns (`--rounds`), so both see the same machine at the same time. Bytes per run are
what the database's b-trees grew by from the third run to the last (dbstat: the pages of each, what
the file grows by), shown per table and index; write seconds are the median over those runs of
store_collection's wall time (with --simulator: the run's database_seconds).

    PYTHONPATH=. .venv/bin/python benchmarks/storage.py --pods 10000 --baseline main
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from benchmarks.baseline import checkout, child_command, use_code  # noqa: E402

WARM_UP_RUNS = 2  # the first runs create every identity and span; the rest only add samples


def measure(pods: int, runs: int) -> dict:
    """Write `runs` runs into a new database; bytes per b-tree after the warm-up and after the last, and seconds."""
    from benchmarks.synthetic import store_synthetic_run, synthetic_inventory
    from shared.store.connection import connect

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as folder:
        conn = connect(Path(folder) / "k8s_metrics.db")
        rng, inventory = random.Random(1), synthetic_inventory(pods, nodes=max(3, pods // 200))
        at, seconds, before = 1_767_225_600.0, [], {}
        for number in range(runs):
            if number == WARM_UP_RUNS:
                before = _btree_bytes(conn)
            started = time.perf_counter()
            store_synthetic_run(conn, inventory, at, rng)
            if number >= WARM_UP_RUNS:
                seconds.append(time.perf_counter() - started)
            at += 300
        after = _btree_bytes(conn)
        conn.close()
    return _per_run(inventory.container_count, seconds, before, after)


def measure_collections(pods: int, runs: int, code: Path) -> dict:
    """The same with real collections (`collect_once`) of the simulator's cluster, served by another process:
    its pods, requests, phases and usage are the simulator's. Seconds: each run's database_seconds."""
    from shared.core.settings import load_settings
    from shared.domain.trigger import Trigger
    from shared.entry.collect import collect_once
    from shared.store.connection import connect

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as folder:
        simulator = subprocess.Popen([sys.executable, "-m", "shared.simulator", "--pods", str(pods), "--kubeconfig",
                                      str(Path(folder) / "kubeconfig")], stdout=subprocess.PIPE, text=True, cwd=code)
        try:
            endpoints = json.loads(simulator.stdout.readline())  # type: ignore[union-attr]
            settings = load_settings(
                database_path=Path(folder) / "k8s_metrics.db", kubeconfig=Path(folder) / "kubeconfig",
                kube_context=None, prometheus_url=endpoints["prometheus_url"], namespaces_include=(),
                namespaces_exclude=(), pod_namespace="", log_level="WARNING", slack_webhook_url=None,
                slack_webhook_url_file=None, webhook_url=None, webhook_url_file=None, smtp_host=None, k_sink=None)
            seconds, before, containers = [], {}, 0
            for number in range(runs):
                if number == WARM_UP_RUNS:
                    conn = connect(settings.database_path)
                    before = _btree_bytes(conn)
                    conn.close()
                body, _ = collect_once(settings, Trigger("cli"))
                containers = body["containers"]
                if number >= WARM_UP_RUNS:
                    seconds.append(body["timings"]["database_seconds"])
            conn = connect(settings.database_path)
            after = _btree_bytes(conn)
            conn.close()
        finally:
            simulator.terminate()
            simulator.wait(10)
    return _per_run(containers, seconds, before, after)


def _per_run(containers: int, seconds: list[float], before: dict[str, int], after: dict[str, int]) -> dict:
    return {"containers": containers, "write_seconds": statistics.median(seconds),
            "bytes_per_run": {name: (after[name] - before.get(name, 0)) / len(seconds) for name in after}}


def _btree_bytes(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())


def compare(pods: int, runs: int, rounds: int, baseline: str, simulator: bool) -> None:
    script = Path(__file__).resolve()
    results: dict[str, list[dict]] = {"baseline": [], "this": []}
    options = ["--pods", str(pods), "--runs", str(runs), *(["--simulator"] if simulator else [])]
    with checkout(baseline) as old_code:
        for _ in range(rounds):
            for side, code in (("baseline", old_code), ("this", script.parent.parent)):
                answer = subprocess.run(child_command(script, code, *options), check=True, capture_output=True,
                                        text=True)
                results[side].append(json.loads(answer.stdout))
    old, new = results["baseline"], results["this"]
    containers = new[0]["containers"]
    print(f"{pods} {'simulated' if simulator else 'synthetic'} pods ({containers} containers), "
          f"{runs - WARM_UP_RUNS} runs measured after {WARM_UP_RUNS}, {rounds} rounds each; baseline {baseline}")
    old_bytes, new_bytes = old[0]["bytes_per_run"], new[0]["bytes_per_run"]
    print(f"{'table or index':<28} {'baseline KiB/run':>17} {'this KiB/run':>13}")
    for name in sorted(set(old_bytes) | set(new_bytes)):
        a, b = old_bytes.get(name, 0) / 1024, new_bytes.get(name, 0) / 1024
        if abs(a) >= 0.05 or abs(b) >= 0.05:
            print(f"{name:<28} {a:>17.1f} {b:>13.1f}")
    old_total, new_total = sum(old_bytes.values()), sum(new_bytes.values())
    print(f"{'total':<28} {old_total / 1024:>17.1f} {new_total / 1024:>13.1f}   "
          f"{new_total / old_total:.1%} of the baseline; {old_total / containers:.1f} -> "
          f"{new_total / containers:.1f} bytes per container")
    old_seconds = statistics.median(r["write_seconds"] for r in old)
    new_seconds = statistics.median(r["write_seconds"] for r in new)
    print(f"write seconds per run (median of the rounds' medians): baseline {old_seconds:.3f}, this {new_seconds:.3f} "
          f"({new_seconds / old_seconds:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="the commit to compare with (default main)")
    parser.add_argument("--simulator", action="store_true",
                        help="collect the simulator's cluster instead of writing synthetic runs (slower)")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # a child: measure the code of this checkout
    args = parser.parse_args()
    if args.code:
        use_code(args.code)
        measured = (measure_collections(args.pods, args.runs, Path(args.code)) if args.simulator
                    else measure(args.pods, args.runs))
        print(json.dumps(measured))
    else:
        compare(args.pods, args.runs, args.rounds, args.baseline, args.simulator)


if __name__ == "__main__":
    main()
