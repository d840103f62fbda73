"""Benchmark collections against the simulator: this tree's code and a baseline revision's, in one run.

For each pod count the simulated Kubernetes API and Prometheus each run in a process of their own,
and each code path collects in a worker process of its own: this tree's, then the baseline's (a git
revision exported to a temporary directory), against the same simulator, one after the other. So the
figures are each collector's alone, on one machine at one time:

  wall, CPU (user+sys seconds of the collecting process, every thread), peak RSS (the high-water mark
  is reset before each run), bytes stored (database pages used after the run minus before), Prometheus
  queries and Kubernetes requests, per collection (the median of the runs after the first, which
  creates the schema); and the same for the Kubernetes part alone (`read_inventory`), because the
  simulated Prometheus, in Python, dominates a whole collection's wall time.

`--prometheus real` answers the queries from Debian's Prometheus instead, as in a cluster: the scenario's
cAdvisor series (a minute apart, from 15 minutes before the start to an hour after) backfilled with
promtool, served on 127.0.0.1. Then the wall time is the collector's and a real server's.

The baseline defaults to the merge-base with `main` (the code before a branch's change), or to the
first parent when HEAD is on main (the code before the last merge). It prints figures and asserts nothing.

    python benchmarks/collect.py --pods 1000 10000 50000 100000
    python benchmarks/collect.py --pods 10000 --baseline HEAD~3 --profile
    python benchmarks/collect.py --pods 10000 --prometheus real --baseline 971bd39
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, nargs="+", default=[1000, 10_000], help="pod counts (default 1000 10000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="collections per code path; the first creates the schema")
    parser.add_argument("--inventory-runs", type=int, default=3, help="Kubernetes-only reads per code path")
    parser.add_argument("--baseline", help="git revision to compare with (default: merge-base with main, or HEAD^1 "
                                           "on main)")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    parser.add_argument("--profile", action="store_true", help="also print each code path's top functions")
    parser.add_argument("--prometheus", choices=("simulated", "real"), default="simulated",
                        help="the simulator's Prometheus (default), or Debian's holding the same series")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # the tree a worker imports from
    parser.add_argument("--kubeconfig", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prometheus-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path[:0] = [str(args.worker), str(REPO)]  # that tree's `shared`, this tree's benchmarks
        from benchmarks import collect_worker  # noqa: PLC0415 - only workers need it

        collect_worker.run(args.worker, args.kubeconfig, args.prometheus_url, args.runs, args.inventory_runs,
                           args.profile)
        return
    with _trees(None if args.no_baseline else (args.baseline or _default_baseline())) as trees:
        for pods in args.pods:
            _compare(pods, args, trees)


def _default_baseline() -> str:
    head = _git("rev-parse", "HEAD")
    base = _git("merge-base", "HEAD", "main")
    return base if base != head else _git("rev-parse", "HEAD^1")


def _git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def _trees(baseline: str | None) -> Iterator[dict[str, Path]]:
    """{"baseline": its exported `shared` package's root, "new": this tree}; the export is removed after."""
    trees = {"new": REPO}
    if baseline is None:
        yield trees
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    try:
        revision = _git("rev-parse", "--short", baseline)
        archive = subprocess.run(["git", "archive", "--format=tar", revision, "shared"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        tar_path = workdir / "shared.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(workdir, filter="data")
        tar_path.unlink()
        print(f"baseline: {revision} ({_git('log', '-1', '--format=%s', revision)[:80]})", flush=True)
        yield {"baseline": workdir, **trees}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _compare(pods: int, args: argparse.Namespace, trees: dict[str, Path]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    kubeconfig = workdir / "kubeconfig"
    try:
        prometheus_server = (_real_prometheus(pods, args.seed, workdir) if args.prometheus == "real"
                             else _simulator(pods, args.seed, "prometheus", None))
        with _simulator(pods, args.seed, "kubernetes", kubeconfig) as kube, prometheus_server as prometheus:
            print(f"\n{pods} pods: simulator ready (Kubernetes API in {kube['ready_seconds']:.1f}s, "
                  f"{kube['rss_mb']:.0f} MB; {args.prometheus} Prometheus in {prometheus['ready_seconds']:.1f}s, "
                  f"{prometheus['rss_mb']:.0f} MB)", flush=True)
            results = {name: _work(tree, kubeconfig, prometheus["prometheus_url"], args)
                       for name, tree in trees.items()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print_table(pods, results)


@contextmanager
def _simulator(pods: int, seed: int, serve: str, kubeconfig: Path | None) -> Iterator[dict[str, Any]]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "shared.simulator", "--pods", str(pods), "--seed", str(seed), "--serve", serve]
    if kubeconfig:
        command += ["--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        endpoints = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        yield {**endpoints, "ready_seconds": time.perf_counter() - started, "rss_mb": _rss_mb(process.pid)}
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def _real_prometheus(pods: int, seed: int, workdir: Path) -> Iterator[dict[str, Any]]:
    """Debian's Prometheus holding the scenario's series from 15 minutes ago to an hour ahead (queries at
    `now` see only the past), backfilled with promtool; its URL once it is ready."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        raise SystemExit("prometheus and promtool are not installed: run `make test` (it installs Debian's)")
    started = time.perf_counter()
    now = int(time.time()) // 60 * 60
    history, data = workdir / "cadvisor.om", workdir / "prometheus"
    subprocess.run([sys.executable, "-m", "shared.simulator", "--pods", str(pods), "--seed", str(seed),
                    "--openmetrics", str(history), "--from", str(now - 900), "--to", str(now + 3600)],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(history), str(data)],
                   check=True, capture_output=True)
    history.unlink()
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 60s\nscrape_configs: []\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                                f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"prometheus exited with {process.returncode} before it was ready")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.1)
        yield {"prometheus_url": url, "ready_seconds": time.perf_counter() - started, "rss_mb": _rss_mb(process.pid)}
    finally:
        process.terminate()
        process.wait(30)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _work(tree: Path, kubeconfig: Path, prometheus_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one code path's worker; its measurements by kind ("collect", "inventory", "profile")."""
    command = [sys.executable, str(REPO / "benchmarks" / "collect.py"), "--worker", str(tree),
               "--kubeconfig", str(kubeconfig), "--prometheus-url", prometheus_url,
               "--runs", str(args.runs), "--inventory-runs", str(args.inventory_runs)]
    if args.profile:
        command.append("--profile")
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{REPO}"}  # the tree's `shared`, this tree's benchmarks
    output = subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    results: dict[str, Any] = {"collect": [], "inventory": [], "profile": []}
    for line in output.splitlines():
        if line.startswith("BENCH "):  # the collector's own log lines are on stdout too
            record = json.loads(line.removeprefix("BENCH "))
            results[record.pop("kind")].append(record)
    return results


_COLUMNS = (("wall_seconds", "wall s", "{:.2f}"), ("cpu_seconds", "CPU s", "{:.2f}"),
            ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("kubernetes_seconds", "kube wait s", "{:.2f}"),
            ("prometheus_seconds", "prom s", "{:.2f}"), ("stored_bytes", "stored MB", "{:.2f}"),
            ("kubernetes_requests", "requests", "{:.0f}"), ("prometheus_queries", "queries", "{:.0f}"))


def _median(runs: list[dict[str, Any]], field: str) -> float | None:
    values = [run[field] for run in runs if run.get(field) is not None]
    return statistics.median(values) if values else None


def _print_table(pods: int, results: dict[str, dict[str, Any]]) -> None:
    for kind, title in (("collect", "whole collection"), ("inventory", "Kubernetes part (read_inventory)")):
        rows = {name: result[kind][1:] if kind == "collect" and len(result[kind]) > 1 else result[kind]
                for name, result in results.items()}
        columns = [column for column in _COLUMNS if any(_median(runs, column[0]) is not None for runs in rows.values())]
        print(f"{pods} pods, {title}, median of {len(next(iter(rows.values())))} run(s):")
        print(f"  {'':<10}" + "".join(f"{label:>13}" for _, label, _ in columns))
        medians = {name: {field: _median(runs, field) for field, _, _ in columns} for name, runs in rows.items()}
        for name, values in medians.items():
            cells = [fmt.format(_scaled(field, values[field])) if values[field] is not None else "-"
                     for field, _, fmt in columns]
            print(f"  {name:<10}" + "".join(f"{cell:>13}" for cell in cells))
        if "baseline" in medians:
            ratios = [_ratio(medians["new"][field], medians["baseline"][field]) for field, _, _ in columns]
            print(f"  {'new/base':<10}" + "".join(f"{ratio:>13}" for ratio in ratios))
    first = next(iter(results.values()))["collect"]
    if first:
        print(f"  {first[-1]['pods']} pods, {first[-1]['containers']} containers; status "
              + ", ".join(f"{name} {result['collect'][-1]['status']}" for name, result in results.items()))
        for name, result in results.items():
            if result["collect"][-1]["error"]:
                print(f"  {name}: {result['collect'][-1]['error']}")
    for name, result in results.items():
        for profile in result["profile"]:
            print(f"\n  profile of {name}, {profile['what']}:\n{profile['text']}")
    sys.stdout.flush()


def _scaled(field: str, value: float) -> float:
    return value / 1e6 if field == "stored_bytes" else value


def _ratio(new: float | None, baseline: float | None) -> str:
    if new is None or not baseline:
        return "-"
    return f"{new / baseline:.2f}"


if __name__ == "__main__":
    main()
