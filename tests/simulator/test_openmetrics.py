"""The simulated Prometheus answers the collector's queries exactly as a real Prometheus does.

The scenario's history is written as OpenMetrics, backfilled with promtool into a real Prometheus
(Debian's 2.42), and both servers get the same queries at the same times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.core.settings import Settings
from shared.simulator.openmetrics import write_openmetrics
from shared.simulator.prometheus_api import PrometheusApiServer
from shared.simulator.scenario import build_scenario
from shared.sources.selectors import container_matchers
from shared.sources.usage import duplicates_usage_query, usage_queries
from tests.support.servers import real_prometheus as backfilled_prometheus

END = int(time.time()) // 60 * 60  # recent: Prometheus deletes blocks beyond its 15-day retention at start
START = END - 2 * 3600


@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    data = write_openmetrics(build_scenario(20), workdir / "cadvisor.om", START, END)
    assert data.read_text().endswith("# EOF\n")
    with backfilled_prometheus(data) as url:
        yield url


def _answer(url: str, query: str, at: float) -> dict[tuple[tuple[str, str], ...], float]:
    body = requests.get(url + "/api/v1/query", params={"query": query, "time": at}, timeout=10).json()
    assert body["status"] == "success", body
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in body["data"]["result"]}


@pytest.mark.parametrize("at", [END, END - 17.5, END - 3600 + 0.25])
@pytest.mark.parametrize("namespaces", [None, ("shop", "data"), ("kube-system",)])
def test_collector_queries_agree_with_a_real_prometheus(real_prometheus: str, at: float, namespaces) -> None:
    settings = Settings()
    with PrometheusApiServer(build_scenario(20)) as simulated:
        for query in usage_queries(settings):
            text = query.render(container_matchers(settings, namespaces))
            real, ours = _answer(real_prometheus, text, at), _answer(simulated.url, text, at)
            assert real.keys() == ours.keys(), query.figure
            assert real or query.figure == "cpu_throttled"
            for key, value in real.items():
                assert math.isclose(ours[key], value, rel_tol=1e-9, abs_tol=1e-12), (query.figure, key)


def test_pod_level_and_pause_series_are_backfilled_too(real_prometheus: str) -> None:
    query = "count by (container) (container_memory_working_set_bytes)"
    with PrometheusApiServer(build_scenario(20)) as simulated:
        assert _answer(real_prometheus, query, END) == _answer(simulated.url, query, END)


COPIES = ({"cluster": "a", "job": "kubelet"}, {"cluster": "a", "job": "cadvisor"}, {"cluster": "b", "job": "kubelet"})


@pytest.fixture(scope="module")
def real_central_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus holding the same history three times over, as the simulator's `copies` does."""
    workdir: Path = tmp_path_factory.mktemp("central")
    data = write_openmetrics(build_scenario(20), workdir / "cadvisor.om", END - 1800, END, copies=COPIES)
    with backfilled_prometheus(data) as url:
        yield url


@pytest.mark.parametrize("scope", [{}, {"cluster_name": "a", "prometheus_cluster_label": "cluster"},
                                   {"cluster_name": "a", "prometheus_cluster_label": "cluster",
                                    "prometheus_selector": 'job=~"kube.*"'}])
def test_copies_and_the_duplicate_check_agree_with_a_real_prometheus(real_central_prometheus: str, scope) -> None:
    """`without`, `and on (...)` and `> 1` as Prometheus evaluates them, on series held several times."""
    settings = Settings(**scope)
    at = END - 17.5
    with PrometheusApiServer(build_scenario(20), copies=COPIES) as simulated:
        for query in [*usage_queries(settings), duplicates_usage_query(settings)]:
            text = query.render(container_matchers(settings, None))
            real, ours = _answer(real_central_prometheus, text, at), _answer(simulated.url, text, at)
            assert real.keys() == ours.keys(), query.figure
            assert real or query.figure in ("cpu_throttled", "duplicates")
            for key, value in real.items():
                assert math.isclose(ours[key], value, rel_tol=1e-9, abs_tol=1e-12), (query.figure, key)
    assert bool(real) == (scope.get("prometheus_selector") is None)  # the duplicates found, or none left


def test_the_simulator_command_writes_the_history_promtool_reads(tmp_path: Path) -> None:
    # `python -m shared.simulator --openmetrics` is how benchmarks/collect.py feeds a real Prometheus
    import subprocess
    import sys

    target = tmp_path / "cadvisor.om"
    done = subprocess.run([sys.executable, "-m", "shared.simulator", "--pods", "20", "--openmetrics", str(target),
                           "--from", str(START), "--to", str(START + 600)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == write_openmetrics(build_scenario(20), tmp_path / "same.om", START, START + 600) \
        .read_text()
    missing = subprocess.run([sys.executable, "-m", "shared.simulator", "--openmetrics", str(target)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "--openmetrics needs --from and --to" in missing.stderr
