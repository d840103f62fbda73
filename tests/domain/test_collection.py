"""A collection run stores what the cluster asks for and uses, and says plainly when it cannot."""

from __future__ import annotations

import pytest

from shared.domain.collection import parse_collect_request
from shared.domain.errors import InvalidInput
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cadvisor import MetricNames
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import build_scenario
from shared.simulator.timeseries import cpu_cores_at, memory_bytes_at
from tests.conftest import BACKENDS, make_settings
from tests.support.store_rows import StoredRow, store_rows

WINDOW_SECONDS = 300


pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def stored_samples(settings) -> dict[tuple[str, str, str], StoredRow]:
    rows = store_rows(
        settings,
        """SELECT w.namespace, w.kind AS workload_kind, w.name AS workload_name, p.name AS pod, c.name AS container,
                  p.qos_class, cs.*, s.*
           FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN containers c ON c.id = cs.container_id
           JOIN workloads w ON w.id = c.workload_id JOIN pods p ON p.id = cs.pod_id""")
    return {(r["namespace"], r["pod"], r["container"]): r for r in rows}


def runs(settings) -> list[StoredRow]:
    return store_rows(settings, "SELECT * FROM runs ORDER BY id")


def test_run_stores_every_container_with_its_requests_and_limits(settings, small_scenario):
    body, status = collect_once(settings, Trigger("cli"))

    assert status == 200 and body["status"] == "ok", body
    assert body["pods"] == len(small_scenario.pods)
    expected = {(p.namespace, p.name, c.name): (p, c) for p in small_scenario.pods for c in p.containers}
    assert body["containers"] == len(expected)
    samples = stored_samples(settings)
    assert set(samples) == set(expected)
    for key, (pod, container) in expected.items():
        row = samples[key]
        limits_only = container.cpu_request_millicores is None and container.cpu_limit_millicores is not None
        assert row["cpu_limit_millicores"] == container.cpu_limit_millicores
        assert row["cpu_request_millicores"] == (container.cpu_limit_millicores if limits_only
                                                 else container.cpu_request_millicores)
        assert row["memory_limit_bytes"] == container.memory_limit_bytes
        assert row["phase"] == pod.phase
        assert row["qos_class"] == pod.qos_class
        assert row["restart_count"] >= container.restart_count
        assert row["last_termination_reason"] == container.last_termination_reason


def test_each_pod_is_named_after_its_top_workload(settings, small_scenario):
    collect_once(settings, Trigger("cli"))
    samples = stored_samples(settings)
    kinds = set()
    for pod in small_scenario.pods:
        row = samples[(pod.namespace, pod.name, pod.containers[0].name)]
        assert (row["workload_kind"], row["workload_name"]) == (pod.workload_kind, pod.workload_name)
        kinds.add(pod.workload_kind)
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod"} <= kinds


def test_usage_is_the_scenario_usage_over_the_window(settings, small_scenario, clock):
    collect_once(settings, Trigger("cli"), clock=clock)
    samples = stored_samples(settings)
    # Scrapes every 60 s; Prometheus 2.x range selectors include both ends: [now - 300 s, now].
    scrapes = [clock.now - WINDOW_SECONDS + 60 * k for k in range(6)]
    checked = 0
    for pod in small_scenario.running_pods():
        for container in pod.containers:
            row = samples[(pod.namespace, pod.name, container.name)]
            cpu = [cpu_cores_at(small_scenario, pod, container, t) * 1000 for t in scrapes[:-1]]
            memory = [memory_bytes_at(small_scenario, pod, container, t) for t in scrapes]
            assert row["cpu_usage_avg_millicores"] == pytest.approx(sum(cpu) / len(cpu), rel=0.02, abs=1)
            assert row["memory_working_set_max_bytes"] == pytest.approx(max(memory), rel=0.001)
            assert row["memory_working_set_avg_bytes"] == pytest.approx(sum(memory) / len(memory), rel=0.001)
            assert row["cpu_usage_max_millicores"] >= row["cpu_usage_avg_millicores"] - 1
            checked += 1
    assert checked > 20


def test_throttled_and_oom_killed_containers_are_visible(settings, small_scenario):
    collect_once(settings, Trigger("cli"))
    samples = stored_samples(settings)
    throttled = [(p, c) for p in small_scenario.running_pods() for c in p.containers if c.throttled_ratio > 0.2]
    oom = [(p, c) for p in small_scenario.pods for c in p.containers if c.last_termination_reason == "OOMKilled"]
    assert throttled and oom
    for pod, container in throttled:
        row = samples[(pod.namespace, pod.name, container.name)]
        assert row["cpu_throttled_ratio"] == pytest.approx(container.throttled_ratio, abs=0.05)
    for pod, container in oom:
        assert samples[(pod.namespace, pod.name, container.name)]["last_termination_reason"] == "OOMKilled"


def test_node_capacity_is_stored(settings, small_scenario):
    collect_once(settings, Trigger("cli"))
    stored = dict(store_rows(
        settings, "SELECT n.name, s.cpu_allocatable_millicores FROM node_samples s JOIN nodes n ON n.id = s.node_id"))
    assert stored == {n.name: n.cpu_allocatable_millicores for n in small_scenario.nodes}


def test_query_count_does_not_grow_with_the_cluster(tmp_path, clock):
    counts = {}
    for pods in (20, 400):
        with SimulatedCluster(build_scenario(pods, seed=3), clock=clock) as cluster:
            settings = make_settings(tmp_path / str(pods), cluster)
            body, _ = collect_once(settings, Trigger("cli"), clock=clock)
            assert body["status"] == "ok"
            counts[pods] = (len(cluster.prometheus.queries), body["prometheus_queries"])
    assert counts[20] == counts[400] == (7, 7)  # the six figures and the duplicate check


def test_pods_are_listed_in_pages(tmp_path, clock):
    with SimulatedCluster(build_scenario(120, seed=5), clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster, kube_page_size=25)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
        pod_lists = [r for r in cluster.kube.requests if r.resource == "pods"]
    assert body["pods"] == 120
    assert len(pod_lists) == 5  # 120 pods at 25 a page


def test_expired_continue_token_restarts_the_list_and_still_gives_everything(tmp_path, clock, small_scenario):
    with SimulatedCluster(small_scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster, kube_page_size=10)
        cluster.kube.inject("/api/v1/pods", 410, times=1)  # the first page's continue is "too old"
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok"
    assert body["pods"] == len(small_scenario.pods)
    assert len(stored_samples(settings)) == sum(len(p.containers) for p in small_scenario.pods)


def test_prometheus_down_stores_kubernetes_data_as_partial(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster, prometheus_url="http://127.0.0.1:9")
    body, status = collect_once(settings, Trigger("cli"))
    assert status == 200
    assert body["status"] == "partial"
    assert "Prometheus" in body["error"] and "unreachable" in body["error"]
    samples = stored_samples(settings)
    assert len(samples) == sum(len(p.containers) for p in small_scenario.pods)
    assert all(row["cpu_usage_avg_millicores"] is None for row in samples.values())
    assert runs(settings)[-1]["status"] == "partial"


def test_forbidden_pods_fail_the_run_naming_the_permission(tmp_path, clock):
    with SimulatedCluster(_with_denied(build_scenario(20, seed=1), {"pods"}), clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster)
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
    assert status == 500
    assert body["status"] == "failed"
    assert "verb 'list' on resource 'pods'" in body["error"]
    assert stored_samples(settings) == {}
    assert [r["status"] for r in runs(settings)] == ["failed"]


def test_forbidden_nodes_keep_the_pods_and_say_why(tmp_path, clock):
    scenario = _with_denied(build_scenario(20, seed=1), {"nodes"})
    with SimulatedCluster(scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "partial"
    assert "verb 'list' on resource 'nodes'" in body["error"]
    assert body["pods"] == 20


@pytest.mark.parametrize("denied", [{"replicasets"}, {"jobs"}, {"replicasets", "jobs"}])
def test_forbidden_owners_keep_the_pods_under_their_immediate_owner_and_say_why(tmp_path, clock, denied):
    scenario = _with_denied(build_scenario(60, seed=3), denied)
    kinds = {"replicasets": "ReplicaSet", "jobs": "Job"}
    forbidden_kinds = {kinds[resource] for resource in denied}
    assert forbidden_kinds <= {p.owner_kind for p in scenario.pods}, "the scenario must have such pods"
    with SimulatedCluster(scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster)
        body, status = collect_once(settings, Trigger("cli"), clock=clock)

    assert (body["status"], status) == ("partial", 200), body["error"]
    assert body["pods"] == 60
    for resource in sorted(denied):
        assert (f"Kubernetes workloads: pods owned by a {kinds[resource]} are stored under its name: missing RBAC "
                f"permission: verb 'list' on resource '{resource}'") in body["error"]
    samples = stored_samples(settings)
    for pod in scenario.pods:
        for container in pod.containers:
            row = samples[(pod.namespace, pod.name, container.name)]
            expected = ((pod.owner_kind, pod.owner_name) if pod.owner_kind in forbidden_kinds
                        else (pod.workload_kind, pod.workload_name))
            assert (row["workload_kind"], row["workload_name"]) == expected, pod.name
    assert [r["status"] for r in runs(settings)] == ["partial"]


def test_unreachable_kubernetes_is_a_retriable_failure(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster, kube_max_retries=0)
    cluster.kube.stop()
    body, status = collect_once(settings, Trigger("cli"))
    assert status == 503
    assert body["status"] == "failed" and "unreachable" in body["error"]


def test_namespaces_in_the_request_limit_the_run(settings, small_scenario):
    wanted = sorted(small_scenario.namespaces)[:2]
    body, _ = collect_once(settings, Trigger("http"), parse_collect_request({"namespaces": wanted}))
    assert body["status"] == "ok"
    assert {key[0] for key in stored_samples(settings)} == set(wanted)
    assert body["pods"] == sum(1 for p in small_scenario.pods if p.namespace in wanted)


def test_excluded_namespaces_are_left_out(tmp_path, cluster, small_scenario):
    excluded = sorted(small_scenario.namespaces)[0]
    settings = make_settings(tmp_path, cluster, namespaces_exclude=(excluded,))
    collect_once(settings, Trigger("cli"))
    assert excluded not in {key[0] for key in stored_samples(settings)}


def test_too_large_answers_are_split_by_namespace(tmp_path, cluster, small_scenario):
    cluster.prometheus.max_series = 15  # the whole-cluster query is refused with 422
    settings = make_settings(tmp_path, cluster)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok", body["error"]
    per_namespace = [q for q in cluster.prometheus.queries if 'namespace="' in q]
    assert len(per_namespace) >= len({p.namespace for p in small_scenario.pods})
    samples = stored_samples(settings)
    running = [(p.namespace, p.name, c.name) for p in small_scenario.running_pods() for c in p.containers]
    assert all(samples[key]["cpu_usage_avg_millicores"] is not None for key in running)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"namespaces": "default"}, "namespaces: Input should be a valid list"),
        ({"namespace": ["a"]}, "namespace: unknown field"),
        ({"namespaces": ["Not_Valid"]}, "'Not_Valid' is not a valid namespace name"),
    ],
)
def test_bad_request_bodies_are_refused_with_the_field(data, message):
    with pytest.raises(InvalidInput, match=message):
        parse_collect_request(data)


def _with_denied(scenario, resources):
    from dataclasses import replace

    return replace(scenario, denied=frozenset(resources))


def test_other_metric_and_label_names_are_read_as_configured(tmp_path, clock, small_scenario):
    """Older cAdvisors (and some relabelling) name the labels pod_name and container_name."""
    names = MetricNames(label_namespace="kubernetes_namespace", label_pod="pod_name", label_container="container_name",
                        cpu_usage="cadvisor_cpu_seconds_total")
    with SimulatedCluster(small_scenario, clock=clock, names=names) as simulated:
        settings = make_settings(tmp_path, simulated, label_namespace="kubernetes_namespace", label_pod="pod_name",
                                 label_container="container_name", metric_cpu_usage="cadvisor_cpu_seconds_total")
        body, status = collect_once(settings, Trigger("cli"))
    assert (status, body["status"]) == (200, "ok")
    samples = stored_samples(settings)
    running = [(p.namespace, p.name, c.name) for p in small_scenario.running_pods() for c in p.containers]
    assert running and all(samples[key]["cpu_usage_avg_millicores"] is not None for key in running)
    assert all(samples[key]["memory_working_set_max_bytes"] is not None for key in running)
