"""`k8s-monitor demo`: the whole pipeline on a simulated cluster, with nothing installed but Python.

A Kubernetes API and a Prometheus API are served on loopback from a seeded scenario; several
collections run with the clock advancing one interval each, into ./data/k8s_metrics.db, and a
summary shows what is requested against what is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from shared.cli import cli_settings
from shared.cli.collect import describe_run
from shared.core.formats import format_bytes, format_cores, format_percent
from shared.domain.report.summary import Summary, summarize
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor demo`."""
    parser.add_argument("--pods", type=_at_least(10), default=300,
                        help="size of the simulated cluster, at least 10 (default 300)")
    parser.add_argument("--runs", type=_at_least(1), default=12,
                        help="collections to run, one interval apart (default 12: an hour of history)")
    parser.add_argument("--seed", type=int, default=42, help="scenario seed (default 42)")


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    """Collect from a simulated cluster and print a summary; exit 1 when no run was stored."""
    from shared.simulator.cluster import SimulatedCluster
    from shared.simulator.scenario import build_scenario
    from shared.store.connection import connect

    base = cli_settings(quiet=True, database_url=None, database_url_file=None, database_password=None,
                        database_password_file=None)  # the demo stays on its SQLite file, whatever DATABASE_URL says
    refuse_real_history(base.database_path)
    interval = base.collect_interval_seconds
    now = [time.time() - interval * (args.runs - 1)]  # the demo's clock: runs end at the present
    print(f"Simulating a cluster of {args.pods} pods (seed {args.seed}) on 127.0.0.1 ...")
    with SimulatedCluster(build_scenario(args.pods, args.seed), clock=lambda: now[0]) as cluster:
        base.database_path.parent.mkdir(parents=True, exist_ok=True)
        kubeconfig = cluster.write_kubeconfig(base.database_path.parent / "simulated-kubeconfig")
        # The simulated cluster's alerts stay in the database: never to a real Slack, mailbox or sink.
        settings = cli_settings(quiet=True, kubeconfig=kubeconfig, kube_context=None,
                                prometheus_url=cluster.prometheus_url, namespaces_include=(), namespaces_exclude=(),
                                pod_namespace="", slack_webhook_url=None, slack_webhook_url_file=None,
                                webhook_url=None, webhook_url_file=None, smtp_host=None, k_sink=None,
                                database_url=None, database_url_file=None, database_password=None,
                                database_password_file=None)
        for number in range(1, args.runs + 1):
            body, _ = collect_once(settings, Trigger("demo"), clock=lambda: now[0])
            print(f"  [{number}/{args.runs}] {describe_run(body)}")
            now[0] += interval
    conn = connect(settings.database_path, readonly=True)
    try:
        summary = summarize(conn, settings=settings)
    finally:
        conn.close()
    if summary is None:
        print("No successful run was stored.")
        return 1
    print(render_summary(summary, settings.database_path))
    return 0


def refuse_real_history(database: Path) -> None:
    """Stop before simulated runs land in a database that holds a real cluster's history."""
    import sqlite3

    from shared.store.connection import StoreError

    if not database.is_file():
        return
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        real = conn.execute("SELECT count(*) FROM runs WHERE trigger != 'demo'").fetchone()[0]
    except sqlite3.Error:
        real = 0  # not our schema yet: connect() will say what is wrong with it
    finally:
        conn.close()
    if real:
        raise StoreError(f"{database} holds {real} runs of a real cluster; the demo's simulated runs would mix "
                         f"with them. Point DATABASE_PATH at another file for the demo")


def render_summary(s: Summary, database: Path) -> str:
    """The demo's closing text: cluster totals, the most over- and under-provisioned containers, what to run next."""
    lines = [
        "",
        f"Cluster: {s.namespaces} namespaces, {s.pods} running pods, {s.containers} containers "
        f"({s.runs} runs stored in {database})",
        f"CPU     requested {format_cores(s.cpu_requested_millicores):>9}"
        f"   used {format_cores(s.cpu_used_millicores):>9}"
        f"   ({format_percent(s.cpu_used_millicores, s.cpu_requested_millicores)} of requests)",
        f"Memory  requested {format_bytes(s.memory_requested_bytes):>9}   used {format_bytes(s.memory_used_bytes):>9}"
        f"   ({format_percent(s.memory_used_bytes, s.memory_requested_bytes)} of requests)",
        "",
        "Most over-provisioned (idle requested CPU):",
    ]
    lines += [
        f"  {f.namespace}/{f.workload} [{f.container}]: requests {format_cores(f.cpu_request_millicores)}, "
        f"uses {format_cores(f.cpu_used_millicores)} on average"
        for f in s.over_provisioned
    ] or ["  none"]
    lines += ["", "Most under-provisioned (use above request):"]
    lines += [
        f"  {f.namespace}/{f.workload} [{f.container}]: CPU {format_cores(f.cpu_used_millicores)} of "
        f"{format_cores(f.cpu_request_millicores)}, memory peak {format_bytes(f.memory_used_bytes)} of "
        f"{format_bytes(f.memory_request_bytes)}"
        for f in s.under_provisioned
    ] or ["  none"]
    command = _invoked_as()
    lines += ["", f"Next: `{command} report` for per-workload numbers and recommendations,",
              f"      `{command} serve` for the web page at http://127.0.0.1:8080/report."]
    return "\n".join(lines)


def _invoked_as() -> str:
    """How the user ran us (`.venv/bin/k8s-monitor` after `make demo`), so the hint can be pasted."""
    program = sys.argv[0]
    if os.path.basename(program) != "k8s-monitor" or os.sep not in program:
        return "k8s-monitor"
    relative = os.path.relpath(program)
    return relative if not relative.startswith("..") else os.path.abspath(program)

