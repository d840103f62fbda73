"""Run a simulated cluster in the foreground: `python -m shared.simulator --pods 10000`.

Benchmarks use it to keep the simulator's CPU and memory out of the collector's process. It prints
one JSON line with the URLs and the kubeconfig path once both servers listen, and stops cleanly on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import DEFAULT_EPOCH_SECONDS, build_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200, help="number of pods (default 200)")
    parser.add_argument("--seed", type=int, default=42, help="scenario seed (default 42)")
    parser.add_argument("--epoch-seconds", type=float, default=DEFAULT_EPOCH_SECONDS,
                        help="when crash-looping containers start adding restarts (unix seconds)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write the kubeconfig")
    parser.add_argument("--deny", default="", help="comma-separated resources answering 403, e.g. nodes")
    args = parser.parse_args(argv)

    scenario = build_scenario(args.pods, args.seed, args.epoch_seconds)
    denied = frozenset(part.strip() for part in args.deny.split(",") if part.strip())
    if denied:
        scenario = replace(scenario, denied=denied)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with SimulatedCluster(scenario) as cluster:
        gc.freeze()  # the scenario's millions of objects never die: sparing them from GC halves query time
        kubeconfig = cluster.write_kubeconfig(args.kubeconfig)
        print(json.dumps({"kube_url": cluster.kube_url, "prometheus_url": cluster.prometheus_url,
                          "kubeconfig": str(kubeconfig)}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
