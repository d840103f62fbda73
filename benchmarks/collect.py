"""Benchmark one collection against the simulator at a given pod count; prints figures, asserts nothing.

The simulator runs in a child process, so the peak RSS printed is the collector's own.

    python benchmarks/collect.py --pods 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.core.settings import load_settings  # noqa: E402
from shared.entry.collect import collect_once  # noqa: E402
from shared.entry.triggers import Trigger  # noqa: E402
from shared.store.connection import connect  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=1, help="collections in a row (the first creates the schema)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    kubeconfig = workdir / "kubeconfig"
    started = time.perf_counter()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "shared.simulator", "--pods", str(args.pods), "--seed", str(args.seed),
         "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        endpoints = json.loads(simulator.stdout.readline())
        print(f"simulator ready in {time.perf_counter() - started:.1f}s: {args.pods} pods")
        settings = load_settings(
            database_path=workdir / "k8s_metrics.db", kubeconfig=kubeconfig, kube_context=None,
            prometheus_url=endpoints["prometheus_url"], namespaces_include=(), namespaces_exclude=(),
            pod_namespace="", log_level="WARNING",
            # simulated alerts stay in the benchmark's database: never to a real Slack, mailbox or sink
            slack_webhook_url=None, slack_webhook_url_file=None, webhook_url=None, webhook_url_file=None,
            smtp_host=None, k_sink=None,
        )
        for number in range(1, args.runs + 1):
            t0 = time.perf_counter()
            body, status = collect_once(settings, Trigger("cli"))
            wall = time.perf_counter() - t0
            conn = connect(settings.database_path)
            rows = conn.execute("SELECT count(*) FROM samples WHERE run_id = ?", (body["run_id"],)).fetchone()[0]
            size = settings.database_path.stat().st_size
            conn.close()
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"run {number}: status={body['status']} wall={wall:.2f}s pods={body['pods']} "
                f"containers={body['containers']} kubernetes_requests={body['kubernetes_requests']} "
                f"prometheus_queries={body['prometheus_queries']} sample_rows={rows} "
                f"kubernetes={body['timings']['kubernetes_seconds']}s "
                f"prometheus={body['timings']['prometheus_seconds']}s "
                f"database={body['timings']['database_seconds']}s peak_rss={peak_mb:.0f}MB db_size={size / 1e6:.1f}MB"
            )
            if body.get("error"):
                print(f"  error: {body['error']}")
    finally:
        simulator.terminate()
        simulator.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
