"""The simulated Kubernetes and Prometheus APIs behave as the real ones do on the wire."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from shared.core.settings import Settings
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.quantities import cpu_spellings, memory_spellings
from shared.simulator.scenario import Scenario, build_scenario
from shared.simulator.timeseries import cpu_cores_at, memory_bytes_at
from shared.sources.selectors import container_matchers
from shared.sources.usage import usage_queries

T0 = 1_795_000_020.0  # a minute boundary: scrapes land on multiples of 60 s
PODS = "/api/v1/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/monitoring/leases"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(20)


@pytest.fixture
def sim_clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def sim(scenario: Scenario, sim_clock: Clock) -> Iterator[SimulatedCluster]:
    with SimulatedCluster(scenario, clock=sim_clock) as cluster:
        yield cluster


@pytest.fixture
def kube(sim: SimulatedCluster) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.token}"
    return session


def _get(session: requests.Session, sim: SimulatedCluster, path: str, **params: object) -> requests.Response:
    return session.get(sim.kube_url + path, params=params, timeout=5)


def _list_all(session: requests.Session, sim: SimulatedCluster, path: str, limit: int) -> list[dict]:
    items, token, versions = [], None, set()
    while True:
        page = _get(session, sim, path, limit=limit, **({"continue": token} if token else {})).json()
        assert page["kind"] == "PodList" and page["apiVersion"] == "v1"
        versions.add(page["metadata"]["resourceVersion"])
        items += page["items"]
        token = page["metadata"].get("continue")
        if not token:
            assert "remainingItemCount" not in page["metadata"]
            break
        assert page["metadata"]["remainingItemCount"] > 0
        assert len(page["items"]) == limit
    assert len(versions) == 1, "every page comes from one snapshot"
    return items


def _reference_quantity(text: str) -> Decimal:
    """A parser independent of the product's, to check that served quantities are exact."""
    suffixes = {"m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
                "T": Decimal(10**12), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30)}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * suffixes[suffix]
    return Decimal(text)


# --- Kubernetes API ------------------------------------------------------------------------------

def test_paginated_lists_cover_every_pod_exactly_once(sim, kube, scenario) -> None:
    names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in _list_all(kube, sim, PODS, limit=7)]
    assert sorted(names) == sorted((p.namespace, p.name) for p in scenario.pods)
    assert len(set(names)) == len(names)
    namespace = max(scenario.namespaces, key=lambda ns: sum(p.namespace == ns for p in scenario.pods))
    in_namespace = _list_all(kube, sim, f"/api/v1/namespaces/{namespace}/pods", limit=2)
    expected = sorted(p.name for p in scenario.pods if p.namespace == namespace)
    assert sorted(p["metadata"]["name"] for p in in_namespace) == expected
    assert len(_get(kube, sim, PODS).json()["items"]) == len(scenario.pods)


def test_an_expired_continue_token_answers_410_gone(sim, kube, sim_clock) -> None:
    token = _get(kube, sim, PODS, limit=5).json()["metadata"]["continue"]
    sim.kube.expire_continue_tokens()
    gone = _get(kube, sim, PODS, limit=5, **{"continue": token})
    assert gone.status_code == 410
    assert gone.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "The provided continue parameter is too old to display a consistent list result."
                   " You can start a new list without the continue parameter.",
        "reason": "Expired", "code": 410,
    }
    token = _get(kube, sim, PODS, limit=5).json()["metadata"]["continue"]
    sim_clock.now += sim.kube.continue_ttl_seconds - 1
    assert _get(kube, sim, PODS, limit=5, **{"continue": token}).status_code == 200
    sim_clock.now += 2
    assert _get(kube, sim, PODS, limit=5, **{"continue": token}).status_code == 410
    assert _get(kube, sim, PODS, limit=5, **{"continue": "not-a-token"}).status_code == 400


def test_a_denied_resource_answers_403_with_the_real_status_body(scenario, sim_clock) -> None:
    with SimulatedCluster(replace(scenario, denied=frozenset({"nodes", "replicasets"})), clock=sim_clock) as sim:
        headers = {"Authorization": f"Bearer {sim.token}"}
        nodes = requests.get(sim.kube_url + "/api/v1/nodes", headers=headers, timeout=5)
        assert nodes.status_code == 403
        assert nodes.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'nodes is forbidden: User "system:serviceaccount:monitoring:k8s-resource-monitor" cannot list'
                       ' resource "nodes" in API group "" at the cluster scope',
            "reason": "Forbidden", "details": {"kind": "nodes"}, "code": 403,
        }
        replicasets = requests.get(sim.kube_url + "/apis/apps/v1/namespaces/shop/replicasets", headers=headers,
                                   timeout=5)
        assert replicasets.json()["message"] == (
            'replicasets.apps is forbidden: User "system:serviceaccount:monitoring:k8s-resource-monitor" cannot list'
            ' resource "replicasets" in API group "apps" in the namespace "shop"')
        review = requests.post(sim.kube_url + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", headers=headers,
                               json={"spec": {"resourceAttributes": {"verb": "list", "resource": "nodes"}}}, timeout=5)
        assert review.status_code == 201 and review.json()["status"]["allowed"] is False
        review = requests.post(sim.kube_url + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", headers=headers,
                               json={"spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}}, timeout=5)
        assert review.json()["status"]["allowed"] is True


def test_requests_without_the_token_answer_401(sim) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = requests.get(sim.kube_url + PODS, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["reason"] == "Unauthorized"
    assert requests.get(sim.kube_url + "/version", timeout=5).json()["gitVersion"].startswith("v1.")
    wrong = requests.get(sim.kube_url + "/version", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert wrong.status_code == 401


def test_kubeconfig_points_at_the_server_with_its_token(sim, tmp_path) -> None:
    config = json.loads(sim.write_kubeconfig(tmp_path / "kubeconfig").read_text())
    assert config["current-context"] == "simulated"
    cluster = config["clusters"][0]["cluster"]
    token = config["users"][0]["user"]["token"]
    assert cluster["server"] == sim.kube_url
    assert requests.get(cluster["server"] + "/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"},
                        timeout=5).json()["kind"] == "NamespaceList"
    assert oct((tmp_path / "kubeconfig").stat().st_mode & 0o777) == "0o600"


def test_pods_carry_full_objects_with_exact_quantities(sim, kube, scenario) -> None:
    served = {p["metadata"]["name"]: p for p in _get(kube, sim, PODS).json()["items"]}
    for pod in scenario.pods:
        item = served[pod.name]
        assert item["status"]["phase"] == pod.phase and item["status"]["qosClass"] == pod.qos_class
        assert item["spec"].get("nodeName") == pod.node
        if pod.owner_kind:
            assert item["metadata"]["ownerReferences"][0] | {"uid": ""} == {
                "apiVersion": "batch/v1" if pod.owner_kind == "Job" else "apps/v1", "kind": pod.owner_kind,
                "name": pod.owner_name, "uid": "", "controller": True, "blockOwnerDeletion": True}
        for spec, container in zip(item["spec"]["containers"], pod.containers):
            resources = spec["resources"]
            for kind, cpu, memory in (("requests", container.cpu_request_millicores, container.memory_request_bytes),
                                      ("limits", container.cpu_limit_millicores, container.memory_limit_bytes)):
                amounts = resources.get(kind, {})
                assert (_reference_quantity(amounts["cpu"]) * 1000 if "cpu" in amounts else None) == cpu
                assert (_reference_quantity(amounts["memory"]) if "memory" in amounts else None) == memory
        if pod.phase == "Running":
            for status, container in zip(item["status"]["containerStatuses"], pod.containers):
                if container.last_termination_reason == "OOMKilled":
                    assert status["lastState"]["terminated"]["exitCode"] == 137
                    assert status["restartCount"] >= container.restart_count
    spellings = {quantity for p in served.values() for c in p["spec"]["containers"]
                 for amounts in c["resources"].values() for quantity in amounts.values()}
    assert any(q.endswith("m") for q in spellings) and any("." in q for q in spellings)
    assert any(q.endswith(("Mi", "Gi", "Ki")) for q in spellings) and any(q[-1] in "MG" or "e" in q for q in spellings)


def test_pods_are_the_size_and_shape_of_real_ones(sim, kube, scenario) -> None:
    items = _get(kube, sim, PODS).json()["items"]
    sizes = [len(json.dumps(item, separators=(",", ":"))) for item in items]
    assert 7_000 <= statistics.mean(sizes) <= 13_000, sizes  # a real API server sends about 9 KB per pod
    for item in items:
        metadata, spec = item["metadata"], item["spec"]
        assert [entry["manager"] for entry in metadata["managedFields"]][-1] == "kubelet"
        assert all(entry["fieldsType"] == "FieldsV1" for entry in metadata["managedFields"])
        assert len(metadata["labels"]) >= 3 and spec["tolerations"] and spec["volumes"]
        token_volume = spec["volumes"][-1]["name"]
        assert token_volume.startswith("kube-api-access-") and "@@@" not in json.dumps(item)
        assert spec["containers"][0]["env"]
        assert all(container["volumeMounts"][-1]["name"] == token_volume for container in spec["containers"])
        if "nodeName" in spec:
            assert item["status"]["containerStatuses"] and item["status"]["podIPs"]
        if "ownerReferences" not in metadata:  # created by `kubectl apply`, which remembers what it applied
            applied = json.loads(metadata["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
            assert applied["metadata"]["name"] == metadata["name"]
    assert any("sidecar.istio.io/status" in (item["metadata"].get("annotations") or {}) for item in items)
    assert any("livenessProbe" in c for item in items for c in item["spec"]["containers"])


def test_replicas_share_their_template_and_every_render_is_the_same(sim, kube, scenario) -> None:
    served = {p["metadata"]["name"]: p for p in _get(kube, sim, PODS).json()["items"]}
    again = {p["metadata"]["name"]: p for p in _get(kube, sim, PODS).json()["items"]}
    assert again == served
    by_workload: dict[tuple[str, str], list[dict]] = {}
    for pod in scenario.pods:
        by_workload.setdefault((pod.namespace, pod.workload_name), []).append(served[pod.name])
    replicas = next(pods for pods in by_workload.values() if len(pods) > 1 and "nodeName" in pods[0]["spec"])

    def template(item: dict) -> str:
        spec = {key: value for key, value in item["spec"].items() if key != "nodeName"}
        return json.dumps(spec).replace(spec["volumes"][-1]["name"], "token")

    assert template(replicas[0]) == template(replicas[1])
    assert replicas[0]["spec"]["volumes"][-1]["name"] != replicas[1]["spec"]["volumes"][-1]["name"]


@pytest.mark.parametrize("millicores", [50, 100, 250, 1000, 1500, 2000])
def test_cpu_spellings_parse_back_exactly(millicores: int) -> None:
    for spelling in cpu_spellings(millicores):
        assert _reference_quantity(spelling) * 1000 == millicores, spelling


@pytest.mark.parametrize("amount", [64 << 20, 128 << 20, 768 << 20, 3 << 29, 256_000_000, 1_000_000_000,
                                    65_843_436 * 1024])
def test_memory_spellings_parse_back_exactly(amount: int) -> None:
    for spelling in memory_spellings(amount):
        assert _reference_quantity(spelling) == amount, spelling


def test_restart_counts_move_with_the_clock(sim, kube, scenario, sim_clock) -> None:
    pod = next(p for p in scenario.running_pods() if any(c.restarts_per_hour for c in p.containers))
    path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"
    before = _get(kube, sim, path).json()
    assert before["kind"] == "Pod"
    sim_clock.now += 2 * 3600
    after = _get(kube, sim, path).json()
    rises = [a["restartCount"] - b["restartCount"] for a, b in
             zip(after["status"]["containerStatuses"], before["status"]["containerStatuses"])]
    assert rises == [round(2 * c.restarts_per_hour) for c in pod.containers]
    listed = next(p for p in _get(kube, sim, f"/api/v1/namespaces/{pod.namespace}/pods").json()["items"]
                  if p["metadata"]["name"] == pod.name)
    assert listed["status"]["containerStatuses"] == after["status"]["containerStatuses"]


def test_owner_lists_name_every_replicaset_and_job(sim, kube, scenario) -> None:
    replicasets = _get(kube, sim, "/apis/apps/v1/replicasets").json()
    assert replicasets["kind"] == "ReplicaSetList"
    served_names = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in replicasets["items"]}
    assert served_names == set(scenario.replicasets)
    assert any(r["spec"]["replicas"] == 0 for r in replicasets["items"])
    jobs = _get(kube, sim, "/apis/batch/v1/jobs").json()["items"]
    owners = {(j["metadata"]["namespace"], j["metadata"]["name"]):
              (j["metadata"]["ownerReferences"][0]["kind"], j["metadata"]["ownerReferences"][0]["name"])
              if "ownerReferences" in j["metadata"] else None for j in jobs}
    assert owners == scenario.jobs
    nodes = _get(kube, sim, "/api/v1/nodes").json()["items"]
    assert [n["metadata"]["name"] for n in nodes] == sorted(n.name for n in scenario.nodes)
    assert _get(kube, sim, "/api/v1/namespaces").json()["items"][0]["status"]["phase"] == "Active"


def test_hpas_are_served_as_autoscaling_v2_lists_them(sim, kube, scenario) -> None:
    import kubernetes_validate

    response = _get(kube, sim, "/apis/autoscaling/v2/horizontalpodautoscalers")
    body = response.json()
    assert (body["kind"], body["apiVersion"]) == ("HorizontalPodAutoscalerList", "autoscaling/v2")
    # Kubernetes' own schema of the list: every field it requires is there, of its type, and no other
    kubernetes_validate.validate(body, "1.37", strict=True)
    hpas = body["items"]
    expected = sorted(scenario.hpas, key=lambda h: (h.namespace, h.name))
    assert [(h["metadata"]["namespace"], h["metadata"]["name"], h["spec"]["scaleTargetRef"]["kind"],
             h["spec"]["scaleTargetRef"]["name"], h["spec"]["minReplicas"], h["spec"]["maxReplicas"],
             h["status"]["currentReplicas"]) for h in hpas] == [
        (h.namespace, h.name, h.target_kind, h.target_name, h.min_replicas, h.max_replicas, h.current_replicas)
        for h in expected]
    assert [[(m["type"], _metric_source(m)["target"]["type"]) for m in h["spec"]["metrics"]] for h in hpas] == [
        [(m.type, "Utilization" if m.utilization_percent else "AverageValue") for m in h.metrics] for h in expected]
    assert all(h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300 for h in hpas)
    namespace = scenario.hpas[0].namespace
    in_namespace = _get(kube, sim, f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers").json()
    assert {h["metadata"]["namespace"] for h in in_namespace["items"]} == {namespace}
    assert _get(kube, sim, "/apis/autoscaling/v1/horizontalpodautoscalers").status_code == 404  # v2 only, here


def _metric_source(metric: dict) -> dict:
    """The part of an HPA metric its type names: `resource`, `containerResource` or `external`."""
    return metric.get("resource") or metric.get("containerResource") or metric["external"]


def test_pods_carry_their_workloads_policy_annotations_and_team_label(sim, kube, scenario) -> None:
    from shared.simulator.scenario import team_of

    pods = _list_all(kube, sim, PODS, 500)
    assert scenario.policies
    for pod in pods:
        metadata = pod["metadata"]
        assert metadata["labels"]["team"] == team_of(metadata["namespace"])
        workload = next(p.workload_name for p in scenario.pods if p.uid == metadata["uid"])
        policy = scenario.policies.get((metadata["namespace"], workload), {})
        assert {k: v for k, v in metadata["annotations"].items() if k.startswith("k8s-monitor.io/")} == policy


def test_lease_writes_use_optimistic_concurrency(sim, kube) -> None:
    missing = _get(kube, sim, LEASES + "/collector")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "collector"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 60, "renewTime": "2026-11-24T10:00:00.000000Z"}}
    created = kube.post(sim.kube_url + LEASES, json=lease, timeout=5)
    assert created.status_code == 201
    assert kube.post(sim.kube_url + LEASES, json=lease, timeout=5).json()["reason"] == "AlreadyExists"
    stale = created.json()
    fresh = kube.put(sim.kube_url + LEASES + "/collector", json=stale | {"spec": {"holderIdentity": "b"}}, timeout=5)
    assert fresh.status_code == 200
    assert int(fresh.json()["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    conflict = kube.put(sim.kube_url + LEASES + "/collector", json=stale, timeout=5)
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "collector": the object has been modified;'
        " please apply your changes to the latest version and try again")
    unversioned = {"metadata": {"name": "collector"}, "spec": {}}
    assert kube.put(sim.kube_url + LEASES + "/collector", json=unversioned, timeout=5).status_code == 422
    [stored] = _get(kube, sim, LEASES, fieldSelector="metadata.name=collector").json()["items"]
    assert stored["spec"]["holderIdentity"] == "b"
    assert kube.delete(sim.kube_url + LEASES + "/collector", timeout=5).json()["status"] == "Success"
    assert _get(kube, sim, LEASES + "/collector").status_code == 404


def test_lease_times_need_six_fractional_digits(sim, kube) -> None:
    def create(name: str, renew_time: str) -> requests.Response:
        body = {"metadata": {"name": name}, "spec": {"holderIdentity": "a", "renewTime": renew_time}}
        return kube.post(sim.kube_url + LEASES, json=body, timeout=5)

    assert create("seconds", "2026-11-24T10:00:00Z").status_code == 400
    assert create("millis", "2026-11-24T10:00:00.123Z").status_code == 400
    stored = create("offset", "2026-11-24T11:00:00.123456+01:00").json()
    assert stored["spec"]["renewTime"] == "2026-11-24T10:00:00.123456Z"


@pytest.mark.parametrize("write", ["create", "update"])
def test_racing_writers_let_exactly_one_win(sim, kube, write) -> None:
    body = {"metadata": {"name": "race"}, "spec": {"holderIdentity": "nobody", "leaseDurationSeconds": 60}}
    if write == "update":
        body = kube.post(sim.kube_url + LEASES, json=body, timeout=5).json()
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def contend(index: int) -> None:
        attempt = json.loads(json.dumps(body))
        attempt["spec"]["holderIdentity"] = f"collector-{index}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {sim.token}"
        barrier.wait()
        if write == "create":
            codes.append(session.post(sim.kube_url + LEASES, json=attempt, timeout=5).status_code)
        else:
            codes.append(session.put(sim.kube_url + LEASES + "/race", json=attempt, timeout=5).status_code)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = 201 if write == "create" else 200
    assert sorted(codes) == [winner] + [409] * 7


def test_request_log_names_the_rbac_verbs(sim, kube) -> None:
    _get(kube, sim, PODS, limit=5)
    _get(kube, sim, "/api/v1/nodes/node-001")
    kube.post(sim.kube_url + LEASES, json={"metadata": {"name": "x"}, "spec": {}}, timeout=5)
    seen = {(r.verb, r.group, r.resource, r.namespace) for r in sim.kube.requests}
    assert seen >= {("list", "", "pods", None), ("get", "", "nodes", None),
                    ("create", "coordination.k8s.io", "leases", "monitoring")}


def test_injected_kube_faults_answer_as_asked(sim, kube) -> None:
    sim.kube.inject(PODS, 429, retry_after=2)
    throttled = _get(kube, sim, PODS)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert throttled.json()["reason"] == "TooManyRequests"
    assert _get(kube, sim, PODS).status_code == 200, "a fault applies `times` times only"

    sim.kube.inject(PODS, 500, times=2)
    assert [_get(kube, sim, PODS).status_code for _ in range(3)] == [500, 500, 200]

    sim.kube.inject(PODS, 200, reset=True)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _get(kube, sim, PODS)

    sim.kube.inject(PODS, 200, delay_seconds=0.2)
    assert _get(kube, sim, PODS).status_code == 200, "a delayed answer still comes"
    sim.kube.inject(PODS, 200, delay_seconds=60)
    with pytest.raises(requests.exceptions.ReadTimeout):  # ... and not before its delay
        kube.get(sim.kube_url + PODS, timeout=0.3)

    sim.kube.inject(PODS, 200, hang=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        kube.get(sim.kube_url + PODS, timeout=0.3)


def test_swapping_the_scenario_serves_the_new_cluster(sim, kube) -> None:
    token = _get(kube, sim, PODS, limit=5).json()["metadata"]["continue"]
    bigger = build_scenario(30, seed=9)
    sim.set_scenario(bigger)
    assert _get(kube, sim, PODS, limit=5, **{"continue": token}).status_code == 410
    assert len(_get(kube, sim, PODS).json()["items"]) == 30
    assert sim.prometheus.scenario is bigger


def test_stop_releases_hanging_requests(scenario) -> None:
    cluster = SimulatedCluster(scenario).start()
    cluster.kube.inject("/", 200, hang=True)
    errors: list[Exception] = []
    hanging = threading.Event()
    record = cluster.kube.record

    def note_arrival(request) -> None:  # type: ignore[no-untyped-def]
        record(request)
        hanging.set()  # the fault is taken right after: the request now hangs

    cluster.kube.record = note_arrival  # type: ignore[method-assign]

    def wait_forever() -> None:
        try:
            requests.get(cluster.kube_url + "/version", timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=wait_forever)
    client.start()
    assert hanging.wait(10)
    cluster.stop()
    client.join(10)
    assert not client.is_alive() and errors  # released by stop(), long before the client's 30 s timeout


# --- Prometheus API ------------------------------------------------------------------------------

def _query(sim: SimulatedCluster, text: str, at: float = T0, method: str = "GET") -> requests.Response:
    params = {"query": text, "time": at}
    if method == "POST":
        return requests.post(sim.prometheus_url + "/api/v1/query", data=params, timeout=5)
    return requests.get(sim.prometheus_url + "/api/v1/query", params=params, timeout=5)


def _by_container(response: requests.Response) -> dict[tuple[str, str, str], float]:
    body = response.json()
    assert body["status"] == "success" and body["data"]["resultType"] == "vector"
    return {(r["metric"]["namespace"], r["metric"]["pod"], r["metric"]["container"]): float(r["value"][1])
            for r in body["data"]["result"]}


def test_usage_queries_match_values_computed_by_hand(sim, scenario) -> None:
    settings = Settings()
    queries = {q.figure: q.render(container_matchers(settings, None)) for q in usage_queries(settings)}
    answers = {figure: _by_container(_query(sim, text, method="POST")) for figure, text in queries.items()}
    pod, container = next((p, c) for p in scenario.running_pods() for c in p.containers if c.throttled_ratio > 0.3)
    key = (pod.namespace, pod.name, container.name)
    window = settings.collect_interval_seconds
    minutes = [T0 - window + 60 * k for k in range(window // 60)]
    mean_cores = statistics.fmean(cpu_cores_at(scenario, pod, container, t) for t in minutes)
    assert answers["cpu_avg"][key] == pytest.approx(mean_cores)
    rates = [(cpu_cores_at(scenario, pod, container, t - 120) + cpu_cores_at(scenario, pod, container, t - 60)) / 2
             for t in minutes + [T0]]
    assert answers["cpu_max"][key] == pytest.approx(max(rates))
    samples = [memory_bytes_at(scenario, pod, container, t) for t in minutes + [T0]]
    assert answers["memory_avg"][key] == pytest.approx(statistics.fmean(samples))
    assert answers["memory_max"][key] == pytest.approx(max(samples))
    assert answers["cpu_throttled"][key] == pytest.approx(container.throttled_ratio)
    assert answers["oom_events"][key] == 0
    running = {(p.namespace, p.name, c.name) for p in scenario.running_pods() for c in p.containers}
    assert set(answers["cpu_avg"]) == running, "one series per running container, no pod-level or pause series"
    limited = {(p.namespace, p.name, c.name) for p in scenario.running_pods() for c in p.containers
               if c.cpu_limit_millicores}
    assert set(answers["cpu_throttled"]) == limited


def test_namespace_matchers_select_those_namespaces(sim, scenario) -> None:
    settings = Settings()
    cpu_avg = usage_queries(settings)[0]
    for namespaces in (("shop",), ("shop", "data", "monitoring")):
        answer = _by_container(_query(sim, cpu_avg.render(container_matchers(settings, namespaces))))
        expected = {(p.namespace, p.name, c.name) for p in scenario.running_pods() for c in p.containers
                    if p.namespace in namespaces}
        assert set(answer) == expected and expected


def test_pod_level_and_pause_series_exist_as_in_cadvisor(sim, scenario) -> None:
    body = _query(sim, "sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total[5m]))").json()
    containers = {r["metric"].get("container") for r in body["data"]["result"]}
    assert None in containers and "POD" in containers, "pod cgroup (no container label) and pause container"
    assert len(body["data"]["result"]) == sum(len(p.containers) + 2 for p in scenario.running_pods())


def test_too_many_series_answers_422_so_the_collector_splits(sim) -> None:
    settings = Settings()
    cpu_avg = usage_queries(settings)[0]
    sim.prometheus.max_series = 5
    wide = _query(sim, cpu_avg.render(container_matchers(settings, None)))
    assert wide.status_code == 422
    assert wide.json() == {"status": "error", "errorType": "execution",
                           "error": "query processing would load too many samples into memory in query execution"}
    assert _query(sim, cpu_avg.render(container_matchers(settings, ("monitoring",)))).status_code == 200


def test_drop_fraction_leaves_out_a_stable_share_of_containers(scenario, sim_clock) -> None:
    with SimulatedCluster(build_scenario(200), clock=sim_clock) as sim:
        settings = Settings()
        texts = [q.render(container_matchers(settings, None)) for q in usage_queries(settings)[:4]]
        everything = _by_container(_query(sim, texts[0]))
        sim.prometheus.drop_fraction = 0.3
        kept = [set(_by_container(_query(sim, text))) for text in texts]
        assert kept[0] == kept[1] == kept[2] == kept[3]
        assert 0.2 < 1 - len(kept[0]) / len(everything) < 0.4


def test_malformed_and_unknown_queries_answer_like_prometheus(sim) -> None:
    assert _query(sim, "no_such_metric{a=\"b\"}").json() == {"status": "success",
                                                              "data": {"resultType": "vector", "result": []}}
    assert _query(sim, "label_replace(up, \"a\", \"b\", \"c\", \"d\")").json()["data"]["result"] == []
    empty = requests.get(sim.prometheus_url + "/api/v1/query", timeout=5)
    assert empty.status_code == 400 and empty.json()["errorType"] == "bad_data"
    bad_time = requests.get(sim.prometheus_url + "/api/v1/query", params={"query": "up", "time": "yesterday"},
                            timeout=5)
    assert bad_time.status_code == 400 and "time" in bad_time.json()["error"]
    assert _query(sim, "1 + 1").json()["data"] == {"resultType": "scalar", "result": [int(T0), "2"]}


def test_query_range_evaluates_each_step(sim) -> None:
    text = "sum(rate(container_cpu_usage_seconds_total{container!=\"\",container!=\"POD\"}[5m]))"
    response = requests.get(sim.prometheus_url + "/api/v1/query_range",
                            params={"query": text, "start": T0 - 600, "end": T0, "step": "60s"}, timeout=5).json()
    assert response["data"]["resultType"] == "matrix"
    values = response["data"]["result"][0]["values"]
    assert [v[0] for v in values] == [int(T0) - 600 + 60 * k for k in range(11)]
    assert values[-1][1] == _query(sim, text).json()["data"]["result"][0]["value"][1]


def test_injected_prometheus_faults_answer_as_asked(sim) -> None:
    sim.prometheus.inject("/api/v1/query", 503)
    unavailable = _query(sim, "up")
    assert unavailable.status_code == 503 and unavailable.json()["status"] == "error"
    sim.prometheus.inject("/api/v1/query", 413)
    too_large = _query(sim, "up")
    assert too_large.status_code == 413 and "text/html" in too_large.headers["Content-Type"]
    sim.prometheus.inject("/api/v1/query", 200, body=b'{"status":"success","data":{"resultType":"vec')
    with pytest.raises(ValueError):
        _query(sim, "up").json()
    sim.prometheus.inject("/api/v1/query", 200, hang=True, times=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(sim.prometheus_url + "/api/v1/query", params={"query": "up"}, timeout=0.3)
    sim.prometheus.clear_faults()
    assert _query(sim, "up").status_code == 200
    assert sim.prometheus.queries[-5:] == ["up"] * 5


def test_status_endpoints_answer_like_prometheus(sim) -> None:
    build = requests.get(sim.prometheus_url + "/api/v1/status/buildinfo", timeout=5).json()
    assert build["status"] == "success" and build["data"]["version"].startswith("2.")
    names = requests.get(sim.prometheus_url + "/api/v1/label/__name__/values", timeout=5).json()["data"]
    assert "container_cpu_usage_seconds_total" in names and "container_oom_events_total" in names
    assert requests.get(sim.prometheus_url + "/-/ready", timeout=5).status_code == 200
    assert requests.get(sim.prometheus_url + "/-/healthy", timeout=5).status_code == 200


# --- foreground process --------------------------------------------------------------------------

def test_module_serves_one_api_per_process_when_asked(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.simulator", "--pods", "20", "--serve", "prometheus"],
        stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        endpoints = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert list(endpoints) == ["prometheus_url"]
        answer = requests.get(endpoints["prometheus_url"] + "/api/v1/query", timeout=5,
                              params={"query": "count(container_memory_working_set_bytes)"}).json()
        assert answer["status"] == "success" and float(answer["data"]["result"][0]["value"][1]) > 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_module_runs_the_cluster_until_sigterm(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.simulator", "--pods", "20", "--kubeconfig", str(tmp_path / "kubeconfig")],
        stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        endpoints = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        token = json.loads(Path(endpoints["kubeconfig"]).read_text())["users"][0]["user"]["token"]
        pods = requests.get(endpoints["kube_url"] + PODS, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert len(pods.json()["items"]) == 20
        assert requests.get(endpoints["prometheus_url"] + "/-/ready", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
