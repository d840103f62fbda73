"""Only one collector at a time: the Lease in Kubernetes, a file lock outside it; losers skip quickly."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from shared.core.settings import load_settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cluster import SimulatedCluster
from shared.sources.kube import LEASES, KubeClient
from shared.sources.kube_credentials import load_credentials
from shared.sources.lease import CollectorLease, format_micro_time
from tests.conftest import make_settings
from tests.support.servers import REPO

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/monitoring/leases"


def lease_settings(tmp_path, cluster, **overrides):
    return make_settings(tmp_path, cluster, pod_namespace="monitoring", pod_name="collect-00001-deployment-abc",
                         **overrides)


def read_lease(cluster: SimulatedCluster) -> dict:
    answer = requests.get(f"{cluster.kube_url}{LEASE_PATH}/k8s-resource-monitor-collector",
                          headers={"Authorization": f"Bearer {cluster.token}"}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def create_lease(cluster: SimulatedCluster, holder: str, renewed_at: float, duration_seconds: int = 60) -> None:
    body = {"metadata": {"name": "k8s-resource-monitor-collector"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_seconds,
                     "acquireTime": format_micro_time(renewed_at), "renewTime": format_micro_time(renewed_at),
                     "leaseTransitions": 3}}
    answer = requests.post(f"{cluster.kube_url}{LEASE_PATH}", json=body,
                           headers={"Authorization": f"Bearer {cluster.token}"}, timeout=5)
    assert answer.status_code == 201, answer.text


def run_statuses(settings) -> list[str]:
    conn = sqlite3.connect(settings.database_path)
    try:
        return [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()


def test_first_collector_creates_the_lease_and_releases_it(tmp_path, cluster, clock):
    settings = lease_settings(tmp_path, cluster)
    body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok"
    verbs = [(r.verb, r.resource) for r in cluster.kube.requests if r.resource == "leases"]
    assert verbs[:2] == [("get", "leases"), ("create", "leases")]
    assert verbs[-1] == ("update", "leases")
    lease = read_lease(cluster)["spec"]
    assert lease["holderIdentity"] == ""  # released at the end of the run
    assert lease["leaseTransitions"] == 0


def test_a_live_lease_of_another_holder_makes_the_run_skip(tmp_path, cluster, clock):
    create_lease(cluster, "collect-other-pod", renewed_at=clock.now - 10)
    settings = lease_settings(tmp_path, cluster)
    body, status = collect_once(settings, Trigger("cli"), clock=clock)
    assert status == 200
    assert body["status"] == "skipped"
    assert "held by collect-other-pod" in body["error"]
    assert run_statuses(settings) == ["skipped"]
    assert not [r for r in cluster.kube.requests if r.resource == "pods"]
    assert read_lease(cluster)["spec"]["holderIdentity"] == "collect-other-pod"


def test_an_expired_lease_is_taken_over(tmp_path, cluster, clock):
    create_lease(cluster, "collect-dead-pod", renewed_at=clock.now - 61, duration_seconds=60)
    settings = lease_settings(tmp_path, cluster)
    body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok"
    assert read_lease(cluster)["spec"]["leaseTransitions"] == 4


def test_a_racing_update_loses_with_conflict(tmp_path, cluster, clock):
    settings = lease_settings(tmp_path, cluster)
    create_lease(cluster, "collect-dead-pod", renewed_at=clock.now - 600)
    credentials = load_credentials(settings)
    with KubeClient(credentials, settings) as first, KubeClient(credentials, settings) as second:
        a = CollectorLease(first, "monitoring", "k8s-resource-monitor-collector", "pod-a", 60, clock)
        b = CollectorLease(second, "monitoring", "k8s-resource-monitor-collector", "pod-b", 60, clock)
        stale = first.get(LEASES, "monitoring", "k8s-resource-monitor-collector")
        assert b.try_acquire() is True
        stale["spec"]["holderIdentity"] = "pod-a"
        assert a._update(stale) is False  # the resourceVersion it read is stale: 409 Conflict
        assert a.try_acquire() is False  # and now the lease is live and held by pod-b
        assert a.held_by == "pod-b"


def test_the_holder_renews_during_a_long_run(tmp_path, cluster):
    settings = lease_settings(tmp_path, cluster, lease_duration_seconds=5, prometheus_timeout_seconds=10)
    cluster.prometheus.inject("/api/v1/query", 200, times=1, delay_seconds=4.0)
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    updates = [r for r in cluster.kube.requests if r.resource == "leases" and r.verb == "update"]
    assert len(updates) >= 3  # at least two renewals (every 5/3 s) and the release


def test_eight_threads_one_collects_the_others_skip(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", 200, times=1, delay_seconds=1.5)  # keep the winner busy
    barrier = threading.Barrier(8)

    def invoke(_: int) -> tuple[dict, int]:
        barrier.wait()
        return collect_once(settings, Trigger("http"))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(invoke, range(8)))
    statuses = sorted(body["status"] for body, _ in answers)
    assert statuses == ["ok"] + ["skipped"] * 7
    assert all(code == 200 for _, code in answers)
    assert sorted(run_statuses(settings)) == statuses


def test_eight_processes_one_collects_the_others_skip(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    collect_once(settings, Trigger("cli"))  # create the schema first, as the deployed function would have
    cluster.kube.inject("/api/v1/pods", 200, times=1, delay_seconds=3.0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_PATH": str(settings.database_path),
           "KUBECONFIG": str(settings.kubeconfig), "PROMETHEUS_URL": settings.prometheus_url,
           "LOG_LEVEL": "WARNING", "POD_NAMESPACE": "", "NAMESPACES_INCLUDE": "", "NAMESPACES_EXCLUDE": ""}
    env.pop("KUBE_CONTEXT", None)
    processes = [subprocess.Popen([sys.executable, "-m", "shared", "collect", "--json"], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [process.communicate(timeout=60) for process in processes]
    for (stdout, stderr), process in zip(outputs, processes):
        assert process.returncode == 0, stderr
        assert "database is locked" not in stderr + stdout
    statuses = sorted(json.loads(stdout)["status"] for stdout, _ in outputs)
    assert statuses == ["ok"] + ["skipped"] * 7


def test_redelivery_after_a_restart_is_still_a_duplicate(tmp_path, cluster, clock):
    settings = make_settings(tmp_path, cluster)
    trigger = Trigger("cloudevent", {}, "/apis/v1/namespaces/monitoring/pingsources/collect", "tick-42",
                      "dev.knative.sources.ping")
    first, _ = collect_once(settings, trigger, clock=clock)
    again, _ = collect_once(load_settings(**settings.model_dump()), trigger, clock=clock)  # a fresh process's view
    assert first["status"] == "ok"
    assert again["status"] == "duplicate"
    clock.advance(86_400 + 1)  # claims are pruned after a day
    later, _ = collect_once(settings, trigger, clock=clock)
    assert later["status"] == "ok"


def test_a_transient_failure_releases_the_event_so_the_retry_runs(tmp_path, cluster, clock):
    settings = make_settings(tmp_path, cluster, kube_max_retries=0)
    trigger = Trigger("cloudevent", {}, "/apis/v1/namespaces/monitoring/pingsources/collect", "tick-7",
                      "dev.knative.sources.ping")
    cluster.kube.inject("/api/v1/pods", 503, times=1)
    failed, status = collect_once(settings, trigger, clock=clock)
    assert (failed["status"], status) == ("failed", 503)
    retried, status = collect_once(settings, trigger, clock=clock)
    assert (retried["status"], status) == ("ok", 200)


@pytest.mark.parametrize("where", ["kubernetes", "prometheus"])
def test_a_run_over_its_budget_stops_as_failed_with_the_reason(tmp_path, cluster, where):
    settings = make_settings(tmp_path, cluster, collect_budget_seconds=1.0, kube_timeout_seconds=5,
                             prometheus_timeout_seconds=5)
    path = "/api/v1/pods" if where == "kubernetes" else "/api/v1/query"
    if where == "kubernetes":
        cluster.kube.inject(path, 200, times=5, hang=True)
    else:
        cluster.prometheus.inject(path, 200, times=5, hang=True)
    body, status = collect_once(settings, Trigger("cli"))
    assert body["status"] == "failed"
    assert "exceeded its time budget of 1s" in body["error"]
    assert status == 500
