"""A central Prometheus holding this cluster twice over (two `cluster` values, cAdvisor scraped by two jobs):
the real Prometheus, backfilled with promtool. Limited by PROMETHEUS_CLUSTER_LABEL and PROMETHEUS_SELECTOR a
run stores exactly what a plain Prometheus of this cluster gives; without them it warns and still adds nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.health import DEGRADED, HEALTHY, check_health
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.openmetrics import write_openmetrics
from tests.conftest import FakeClock, make_settings
from tests.support.central_store import COPIES, HISTORY_SECONDS, ONE_COPY, stored_figures


@pytest.fixture(scope="session")
def central_prometheus(small_scenario, backfilled_prometheus, tmp_path_factory) -> Iterator[str]:
    """A real Prometheus holding the small scenario's last half hour four times; ends where the plain one does."""
    from tests.support.servers import real_prometheus

    _, end = backfilled_prometheus
    data = write_openmetrics(small_scenario, tmp_path_factory.mktemp("central") / "cadvisor.om",
                             int(end) - HISTORY_SECONDS, int(end), copies=COPIES)
    with real_prometheus(data) as url:
        yield url


@pytest.fixture(scope="session")
def one_cluster_truth(small_scenario, backfilled_prometheus, tmp_path_factory) -> dict:
    """The figures a run stores from a plain Prometheus holding only this cluster, scraped once."""
    url, end = backfilled_prometheus
    clock = FakeClock(end)
    with SimulatedCluster(small_scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path_factory.mktemp("truth"), cluster, prometheus_url=url)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok" and body["warnings"] == [], body
    return stored_figures(settings.database_path)


def collect_from(url: str, end: float, scenario, tmp_path, **overrides: object) -> tuple[dict, dict]:
    clock = FakeClock(end)
    with SimulatedCluster(scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster, prometheus_url=url, **overrides)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    return body, stored_figures(settings.database_path)


def test_with_the_cluster_label_and_selector_every_figure_is_the_one_cluster_truth(
        tmp_path, small_scenario, backfilled_prometheus, central_prometheus, one_cluster_truth) -> None:
    _, end = backfilled_prometheus
    body, figures = collect_from(central_prometheus, end, small_scenario, tmp_path, **ONE_COPY)

    assert body["status"] == "ok" and body["warnings"] == [], body
    assert body["cluster"] == "prod-eu"
    assert sum(1 for row in figures.values() if row[0] is not None) >= 40  # usage for the running containers
    assert figures == one_cluster_truth


@pytest.mark.parametrize(("overrides", "differing", "advice"), [
    ({}, "cluster, job", ["PROMETHEUS_CLUSTER_LABEL=cluster and CLUSTER_NAME", "add a matcher on job to "
                                                                                "PROMETHEUS_SELECTOR"]),
    ({"cluster_name": "prod-eu", "prometheus_cluster_label": "cluster"}, "job",
     ['add a matcher on job to PROMETHEUS_SELECTOR (e.g. PROMETHEUS_SELECTOR=job="<the one to keep>")']),
])
def test_duplicated_series_are_warned_about_and_never_added(
        tmp_path, small_scenario, backfilled_prometheus, central_prometheus, one_cluster_truth,
        overrides, differing, advice) -> None:
    _, end = backfilled_prometheus
    body, figures = collect_from(central_prometheus, end, small_scenario, tmp_path, **overrides)

    assert body["status"] == "ok", body["error"]
    (warning,) = body["warnings"]
    running = sum(len(pod.containers) for pod in small_scenario.running_pods())
    assert warning.startswith(f"{running} container(s) have several series of container_cpu_usage_seconds_total "
                              f"that differ in {differing} (")
    assert "one copy of each is used, none are added together" in warning
    for words in advice:
        assert words in warning
    assert figures == one_cluster_truth  # one copy used: CPU, throttling and OOM events not doubled


def test_health_asks_for_this_clusters_series_and_names_the_settings_when_none_match(
        tmp_path, central_prometheus) -> None:
    matching = make_settings(tmp_path, prometheus_url=central_prometheus, **ONE_COPY)
    wrong = make_settings(tmp_path, prometheus_url=central_prometheus, **{**ONE_COPY, "cluster_name": "prod-us"})

    found, missing = (check_health(settings, now=time.time()).checks["prometheus"] for settings in (matching, wrong))

    assert found.status == HEALTHY, found.error
    assert found.details["selector"] == '{cluster="prod-eu",job="kubelet"}'
    assert missing.status == DEGRADED
    assert ('has no series of container_cpu_usage_seconds_total, container_memory_working_set_bytes matching '
            '{cluster="prod-us",job="kubelet"} (PROMETHEUS_CLUSTER_LABEL with CLUSTER_NAME, PROMETHEUS_SELECTOR) '
            'in the last hour') in (missing.error or "")
