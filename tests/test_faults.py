"""The fault matrix: each misbehaviour of Kubernetes or Prometheus gives a documented run status."""

from __future__ import annotations

import sqlite3

import pytest

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from tests.conftest import make_settings


def container_count(scenario) -> int:
    return sum(len(p.containers) for p in scenario.pods)


def samples_with_usage(settings) -> tuple[int, int]:
    conn = sqlite3.connect(settings.database_path)
    try:
        return conn.execute(
            "SELECT count(*), count(cpu_usage_avg_millicores) FROM samples"
        ).fetchone()
    finally:
        conn.close()


def pod_list_calls(cluster) -> int:
    return sum(1 for r in cluster.kube.requests if r.resource == "pods")


def test_kubernetes_429_is_retried_after_retry_after(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", 429, times=2, retry_after=0.2)
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("ok", 200)
    assert body["containers"] == container_count(small_scenario)
    assert pod_list_calls(cluster) == 3


def test_kubernetes_500_once_is_retried(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", 500, times=1)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    assert body["containers"] == container_count(small_scenario)


def test_kubernetes_500_that_persists_fails_the_run_for_a_retry(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster, kube_max_retries=2)
    cluster.kube.inject("/api/v1/pods", 500, times=10)
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("failed", 503)
    assert "answered 500 to list pods" in body["error"] and "after 3 attempts" in body["error"]
    assert samples_with_usage(settings) == (0, 0)


def test_connection_reset_in_the_middle_of_a_page_is_retried(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster, kube_page_size=10)
    cluster.kube.inject("/api/v1/pods", 200, times=1, reset=True)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    assert samples_with_usage(settings)[0] == container_count(small_scenario)


def test_expired_continue_token_restarts_the_list(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster, kube_page_size=10)
    record = cluster.kube.record
    seen = []

    def expire_on_second_page(request):  # the token handed out with page 1 is now "too old"
        if request.path.startswith("/api/v1/pods"):
            seen.append(request.path)
            if len(seen) == 2:
                cluster.kube.expire_continue_tokens()
        record(request)

    cluster.kube.record = expire_on_second_page
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    assert body["pods"] == len(small_scenario.pods)
    assert samples_with_usage(settings)[0] == container_count(small_scenario)
    assert pod_list_calls(cluster) == 2 + -(-len(small_scenario.pods) // 10)  # 2 pages lost, then the full list


def test_kubernetes_that_never_answers_fails_after_the_timeout(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster, kube_timeout_seconds=0.5, kube_max_retries=1)
    cluster.kube.inject("/api/v1/pods", 200, times=5, hang=True)
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("failed", 503)
    assert "did not answer within 0.5s" in body["error"]


def test_prometheus_503_once_is_asked_again_per_namespace(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", 503, times=1)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    assert body["prometheus_queries"] == 6 + len(small_scenario.namespaces)


def test_prometheus_503_that_persists_gives_a_partial_run(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", 503, times=1000)
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("partial", 200)
    assert "Prometheus answered 503" in body["error"]
    assert samples_with_usage(settings) == (container_count(small_scenario), 0)


def test_prometheus_timeout_gives_a_partial_run(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster, prometheus_timeout_seconds=0.5)
    cluster.prometheus.inject("/api/v1/query", 200, times=10, hang=True)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "partial"
    assert "did not answer within 0.5s" in body["error"]
    assert samples_with_usage(settings) == (container_count(small_scenario), 0)


def test_malformed_prometheus_json_loses_only_that_figure(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", 200, times=1, body=b'{"status": "success", "data": {')
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "partial"
    assert "cpu_avg: Prometheus answered 200 with a body that is not JSON" in body["error"]
    conn = sqlite3.connect(settings.database_path)
    cpu_avg, memory_max = conn.execute(
        "SELECT count(cpu_usage_avg_millicores), count(memory_working_set_max_bytes) FROM samples"
    ).fetchone()
    conn.close()
    assert cpu_avg == 0 and memory_max > 0


def test_missing_series_leave_only_those_containers_without_usage(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.drop_fraction = 0.3
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"  # a container Prometheus does not know is not a failed run
    total, with_usage = samples_with_usage(settings)
    running = sum(len(p.containers) for p in small_scenario.running_pods())
    assert total == container_count(small_scenario)
    assert 0 < with_usage < running


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_fail_the_run_without_retry(tmp_path, cluster, status):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", status, times=1)
    body, code = collect_once(settings, Trigger("cli"))
    assert (body["status"], code) == ("failed", 500)
    assert pod_list_calls(cluster) == 1
