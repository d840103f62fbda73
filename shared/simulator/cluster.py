"""A whole simulated cluster: the Kubernetes API and Prometheus over one scenario, started together.

Both servers share the scenario and the clock, so what the API says about a pod and what
Prometheus says about its usage always describe the same cluster at the same moment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from shared.simulator.cadvisor import MetricNames
from shared.simulator.kube_api import KubeApiServer
from shared.simulator.prometheus_api import PrometheusApiServer
from shared.simulator.scenario import Scenario


class SimulatedCluster:
    """Use as a context manager: both servers listen on 127.0.0.1 free ports inside the block."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time,
                 continue_ttl_seconds: float = 300.0, names: MetricNames = MetricNames()) -> None:
        self.kube = KubeApiServer(scenario, clock, continue_ttl_seconds=continue_ttl_seconds)
        self.prometheus = PrometheusApiServer(scenario, clock, names=names)

    @property
    def kube_url(self) -> str:
        return self.kube.url

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def token(self) -> str:
        return self.kube.token

    @property
    def scenario(self) -> Scenario:
        return self.kube.scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch both servers to another scenario (say, `scenario.healed(now)`)."""
        self.kube.set_scenario(scenario)
        self.prometheus.set_scenario(scenario)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """A kubeconfig for the API server: token auth, context "simulated", current-context set."""
        return self.kube.write_kubeconfig(path)

    def start(self) -> SimulatedCluster:
        self.kube.start()
        try:
            self.prometheus.start()
        except BaseException:
            self.kube.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers, releasing hanging handlers and open connections."""
        try:
            self.prometheus.stop()
        finally:
            self.kube.stop()

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
