"""Run a simulated cluster in the foreground: `python -m shared.simulator --pods 10000`.

Benchmarks use it to keep the simulator's CPU and memory out of the collector's process. It prints
one JSON line with the URLs and the kubeconfig path once the servers listen, and stops cleanly on
SIGTERM or SIGINT. `--serve kubernetes` or `--serve prometheus` runs one of the two APIs: two
processes over the same scenario (same pods and seed) keep the simulated PromQL, which holds this
process's interpreter while it computes, from slowing the API server's answers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.simulator.cluster import SimulatedCluster
from shared.simulator.kube_api import KubeApiServer
from shared.simulator.prometheus_api import PrometheusApiServer
from shared.simulator.scenario import DEFAULT_EPOCH_SECONDS, build_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200, help="number of pods (default 200)")
    parser.add_argument("--seed", type=int, default=42, help="scenario seed (default 42)")
    parser.add_argument("--epoch-seconds", type=float, default=DEFAULT_EPOCH_SECONDS,
                        help="when crash-looping containers start adding restarts (unix seconds)")
    parser.add_argument("--kubeconfig", type=Path, help="where to write the kubeconfig (needed unless "
                                                        "--serve prometheus)")
    parser.add_argument("--deny", default="", help="comma-separated resources answering 403, e.g. nodes")
    parser.add_argument("--serve", choices=("both", "kubernetes", "prometheus"), default="both",
                        help="which API to serve (default both)")
    parser.add_argument("--openmetrics", type=Path, help="write the cAdvisor series to this file and exit")
    parser.add_argument("--from", dest="start_seconds", type=int, help="with --openmetrics: first sample (unix s)")
    parser.add_argument("--to", dest="end_seconds", type=int, help="with --openmetrics: last sample (unix s)")
    parser.add_argument("--step", dest="step_seconds", type=int, default=60,
                        help="with --openmetrics: seconds between samples (default 60)")
    args = parser.parse_args(argv)
    if args.openmetrics and (args.start_seconds is None or args.end_seconds is None):
        parser.error("--openmetrics needs --from and --to (unix seconds)")
    if not args.openmetrics and args.serve != "prometheus" and args.kubeconfig is None:
        parser.error("--kubeconfig is required to serve the Kubernetes API")

    gc.disable()  # building makes millions of objects that all live on: collecting meanwhile finds nothing
    scenario = build_scenario(args.pods, args.seed, args.epoch_seconds)
    if args.openmetrics:
        from shared.simulator.openmetrics import write_openmetrics

        write_openmetrics(scenario, args.openmetrics, args.start_seconds, args.end_seconds, args.step_seconds)
        return 0
    denied = frozenset(part.strip() for part in args.deny.split(",") if part.strip())
    if denied:
        scenario = replace(scenario, denied=denied)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.ExitStack() as servers:
        endpoints: dict[str, Any] = {}
        if args.serve == "both":
            cluster = servers.enter_context(SimulatedCluster(scenario))
            endpoints.update(kube_url=cluster.kube_url, prometheus_url=cluster.prometheus_url,
                             kubeconfig=str(cluster.write_kubeconfig(args.kubeconfig)))
        elif args.serve == "kubernetes":
            kube = KubeApiServer(scenario)
            servers.enter_context(kube)
            endpoints.update(kube_url=kube.url, kubeconfig=str(kube.write_kubeconfig(args.kubeconfig)))
        else:
            prometheus = PrometheusApiServer(scenario)
            servers.enter_context(prometheus)
            endpoints["prometheus_url"] = prometheus.url
        gc.freeze()  # the scenario's millions of objects never die: sparing them from GC halves query time
        gc.enable()
        print(json.dumps(endpoints), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
