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
    cluster.kube.inject("/api/v1/pods", 429, times=2, retry_after=7)
    waits: list[float] = []
    body, status = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert (body["status"], status) == ("ok", 200)
    assert body["containers"] == container_count(small_scenario)
    assert pod_list_calls(cluster) == 3
    assert waits == [7.0, 7.0]


def test_kubernetes_429_asking_for_a_longer_wait_than_a_minute_fails_the_run_for_a_retry(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", 429, times=1, retry_after=3600)
    waits: list[float] = []
    body, status = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert (body["status"], status) == ("failed", 503)
    assert "list pods failed: the API server asked to retry after 3600s, longer than 60s" in body["error"]
    assert waits == [] and pod_list_calls(cluster) == 1


def test_kubernetes_5xx_backs_off_exponentially(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster, kube_max_retries=3)
    cluster.kube.inject("/api/v1/pods", 503, times=3)
    waits: list[float] = []
    body, _ = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert body["status"] == "ok"
    assert len(waits) == 3
    for number, waited in enumerate(waits, start=1):
        ceiling = 0.2 * 2 ** (number - 1)
        assert ceiling / 2 <= waited <= ceiling


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


def per_namespace_queries(cluster) -> list[str]:
    return [q for q in cluster.prometheus.queries if 'namespace="' in q]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_prometheus_unavailable_once_is_asked_the_same_query_again_after_a_backoff(
        tmp_path, cluster, small_scenario, status):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", status, times=1)
    waits: list[float] = []
    body, _ = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert body["status"] == "ok", body["error"]
    assert body["prometheus_queries"] == 7 + 1
    assert per_namespace_queries(cluster) == []  # "not now" is not "too large"
    assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0
    assert samples_with_usage(settings)[1] > 0


def test_prometheus_429_waits_what_retry_after_asks(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", 429, times=1, retry_after=4)
    waits: list[float] = []
    body, _ = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert body["status"] == "ok"
    assert waits == [4.0]


def test_prometheus_503_that_persists_gives_a_partial_run(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", 503, times=1000)
    waits: list[float] = []
    body, status = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert (body["status"], status) == ("partial", 200)
    assert "Prometheus answered 503 (2 attempts): simulated unavailable error" in body["error"]
    assert body["prometheus_queries"] == 2 and len(waits) == 1  # one retry, then no other query
    assert per_namespace_queries(cluster) == []
    assert samples_with_usage(settings) == (container_count(small_scenario), 0)


@pytest.mark.parametrize("status", [413, 414, 422])
def test_prometheus_answers_that_say_too_large_are_asked_again_per_namespace(
        tmp_path, cluster, small_scenario, status):
    settings = make_settings(tmp_path, cluster)
    cluster.prometheus.inject("/api/v1/query", status, times=1)
    waits: list[float] = []
    body, _ = collect_once(settings, Trigger("cli"), sleep=waits.append)
    assert body["status"] == "ok", body["error"]
    assert body["prometheus_queries"] == 7 + len(small_scenario.namespaces)
    assert len(per_namespace_queries(cluster)) == len(small_scenario.namespaces)
    assert waits == []


def test_a_prometheus_answer_over_the_size_limit_is_asked_again_per_namespace(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    whole = collect_once(settings, Trigger("cli"))[0]
    assert whole["prometheus_queries"] == 7
    cluster.prometheus.queries.clear()
    # room for one namespace's answer, not for the whole cluster's
    settings = make_settings(tmp_path / "limited", cluster, prometheus_max_response_bytes=2048)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok", body["error"]
    assert len(per_namespace_queries(cluster)) == 6 * len(small_scenario.namespaces)


def test_prometheus_timeout_gives_a_partial_run(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster, prometheus_timeout_seconds=0.5)
    cluster.prometheus.inject("/api/v1/query", 200, times=10, hang=True)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "partial"
    assert "did not answer within 0.5s" in body["error"]
    assert samples_with_usage(settings) == (container_count(small_scenario), 0)


def test_malformed_prometheus_json_loses_only_that_figure(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster, prometheus_max_concurrency=1)  # queries in order: which one is hit
    # the duplicate check (asked first) and the first figure, cpu_avg
    cluster.prometheus.inject("/api/v1/query", 200, times=2, body=b'{"status": "success", "data": {')
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "partial"
    assert body["error"] == "Prometheus: cpu_avg: Prometheus answered 200 with a body that is not JSON"
    assert body["warnings"] == ["could not look for duplicated series: Prometheus answered 200 with a body that is "
                                "not JSON"]
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
