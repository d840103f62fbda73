"""VictoriaMetrics (Debian's single node, data imported through its API) as a second real backend.

It holds the central-store copies (two clusters, two scrape jobs); limited to one copy, a run stores
what the real Prometheus gives for the same samples: every figure within 1 %, except the CPU
average, whose difference is documented (README, "Prometheus setups") and pinned here: Prometheus'
`rate` extrapolates the samples inside the window to its edges, MetricsQL's starts from the last
sample before the window and does not extrapolate. The run happens between scrapes, as in
production (a sample exactly on a window's start is counted by Prometheus 2 and not by VictoriaMetrics).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.health import HEALTHY, check_health
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.timeseries import cpu_seconds_total_at
from shared.simulator.vm_import import vm_import_lines
from tests.conftest import FakeClock, make_settings
from tests.support.central_store import COPIES, FIGURES, HISTORY_SECONDS, ONE_COPY, stored_figures

BETWEEN_SCRAPES_SECONDS = 30  # the run starts this long after the last scrape


@pytest.fixture(scope="session")
def victoria_metrics(small_scenario, backfilled_prometheus) -> Iterator[str]:
    """VictoriaMetrics holding the last half hour of the small scenario four times; ends where Prometheus does."""
    from tests.support.victoria_metrics import real_victoria_metrics

    _, end = backfilled_prometheus
    with real_victoria_metrics(vm_import_lines(small_scenario, int(end) - HISTORY_SECONDS, int(end),
                                               copies=COPIES)) as url:
        yield url


def collect_at(url: str, at: float, scenario, tmp_path, **overrides: object) -> tuple[dict, dict]:
    clock = FakeClock(at)
    with SimulatedCluster(scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster, prometheus_url=url, **overrides)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok", body["error"]
    return body, stored_figures(settings.database_path)


@pytest.fixture(scope="session")
def both(small_scenario, backfilled_prometheus, victoria_metrics, tmp_path_factory) -> tuple:
    """The answers and figures of one run against each store, at the same moment between scrapes."""
    url, end = backfilled_prometheus
    at = end - BETWEEN_SCRAPES_SECONDS
    prometheus = collect_at(url, at, small_scenario, tmp_path_factory.mktemp("prometheus"))
    victoria = collect_at(victoria_metrics, at, small_scenario, tmp_path_factory.mktemp("vm"), **ONE_COPY)
    return at, prometheus, victoria


def test_every_figure_but_the_cpu_average_agrees_within_one_percent(both) -> None:
    _, (_, prometheus), (body, victoria) = both

    assert body["warnings"] == [] and victoria.keys() == prometheus.keys()
    compared = 0
    for key, row in prometheus.items():
        for name, ours, theirs in zip(FIGURES, row, victoria[key], strict=True):
            if name == "cpu_usage_avg_millicores":
                continue
            assert (ours is None) == (theirs is None), (key, name)
            if ours is not None:
                assert theirs == pytest.approx(ours, rel=0.01, abs=1), (key, name)
                compared += 1
    assert compared > 4 * 40


def test_the_cpu_average_differs_as_each_rate_is_documented(both, small_scenario) -> None:
    """Prometheus: the samples in the window, extrapolated to it (five scrapes, 240 s between the first and
    last). VictoriaMetrics: from the scrape before the window to the last in it (300 s)."""
    at, (_, prometheus), (_, victoria) = both
    last = at - BETWEEN_SCRAPES_SECONDS  # the last scrape in the window

    def average_millicores(pod, container, since: float) -> int:
        used = cpu_seconds_total_at(small_scenario, pod, container, last) - cpu_seconds_total_at(
            small_scenario, pod, container, since)
        return round(used / (last - since) * 1000)

    differences = []
    for pod in small_scenario.running_pods():
        for container in pod.containers:
            key = (pod.namespace, pod.name, container.name)
            assert prometheus[key][0] == pytest.approx(average_millicores(pod, container, last - 240), abs=1)
            assert victoria[key][0] == pytest.approx(average_millicores(pod, container, last - 300), abs=1)
            if prometheus[key][0]:
                differences.append(abs(victoria[key][0] - prometheus[key][0]) / prometheus[key][0])
    assert max(differences) > 0.01  # the difference is real, not rounding


def test_victoria_metrics_reports_no_samples_processed_and_health_works_against_it(
        tmp_path, both, victoria_metrics) -> None:
    _, (prometheus_body, _), (victoria_body, _) = both
    settings = make_settings(tmp_path, prometheus_url=victoria_metrics, **ONE_COPY)

    check = check_health(settings, now=time.time()).checks["prometheus"]

    assert prometheus_body["prometheus_samples_processed"] > 0
    assert victoria_body["prometheus_samples_processed"] is None  # it does not answer stats=all
    assert victoria_body["prometheus_queries"] == 7
    assert check.status == HEALTHY, check.error


def test_duplicated_series_are_warned_about_and_never_added_on_victoria_metrics_too(
        tmp_path, small_scenario, both, victoria_metrics) -> None:
    at, _, (_, one_copy) = both

    body, figures = collect_at(victoria_metrics, at, small_scenario, tmp_path)

    (warning,) = body["warnings"]
    assert "that differ in cluster, job (" in warning
    assert figures == one_copy
