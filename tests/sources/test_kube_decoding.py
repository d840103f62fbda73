"""List pages are decoded into the few fields the monitor reads, one page at a time.

What a pod carries besides (managedFields, annotations, env, probes) is skipped, quantities stay
exact, a sparse pod still decodes, a page of the wrong shape fails naming where, and no page's
bytes are still alive when the next page is asked for.
"""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from pathlib import Path

import pytest
import requests

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.sources.inventory import ContainerRecord, PodRecord, parse_pod
from shared.sources.kube import PODS, KubeClient
from shared.sources.kube_credentials import load_credentials
from shared.sources.kube_objects import Pod, list_decoder
from tests.conftest import make_settings

MiB = 2**20


def decode_pods(*items: dict) -> list[PodRecord]:
    page = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                       "items": list(items)}).encode()
    return [parse_pod(pod) for pod in list_decoder(Pod).decode(page).items or ()]


def pod(**containers: dict) -> dict:
    """A pod with the given containers' resources (name -> resources)."""
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"},
            "spec": {"containers": [{"name": name, "resources": resources} for name, resources in containers.items()]},
            "status": {"phase": "Running"}}


def test_fields_the_monitor_does_not_read_are_skipped_whatever_they_hold():
    plain = pod(app={"requests": {"cpu": "250m", "memory": "128Mi"}})
    dressed = json.loads(json.dumps(plain))
    dressed["metadata"].update(
        managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:containers": {}}}}],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "4"}}}]}})},
        labels={"app": "web"}, futureField={"nested": [1, "two", None]},
    )
    dressed["spec"]["containers"][0].update(
        env=[{"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}}}],
        resources={"requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
                   "claims": [{"name": "gpu"}]},
        livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}}, image="web:1.0",
    )
    dressed["spec"]["overhead"] = {"cpu": "bad quantity, never read"}
    dressed["status"].update(conditions=[{"type": "Ready", "status": "True", "lastProbeTime": None}],
                             podIPs=[{"ip": "10.0.0.1"}])
    assert decode_pods(dressed) == decode_pods(plain)
    assert decode_pods(plain)[0].containers == [ContainerRecord("app", 250, None, 128 * MiB, None, 0, None)]


@pytest.mark.parametrize(("cpu", "memory", "millicores", "memory_bytes"), [
    ("250m", "128Mi", 250, 128 * MiB),
    ("0.5", "1G", 500, 10**9),
    ("1e3", "1e9", 1_000_000, 10**9),
    ("100u", "0.1Gi", 1, 107_374_183),  # rounded up to a whole millicore and a whole byte, as the API server does
    ("2", "1.5Gi", 2000, 1536 * MiB),
    (3, 536870912, 3000, 512 * MiB),  # numbers where a hand-written manifest went through a JSON tool
])
def test_quantities_in_every_spelling_decode_exactly(cpu, memory, millicores, memory_bytes):
    (record,) = decode_pods(pod(app={"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}))
    app = record.containers[0]
    assert (app.cpu_request_millicores, app.memory_request_bytes, app.memory_limit_bytes) == (
        millicores, memory_bytes, memory_bytes)


def test_a_pod_without_the_optional_fields_decodes_with_defaults():
    bare = {"metadata": {"name": "pending-1", "namespace": "shop"}}
    nulls = {"metadata": {"name": "pending-2", "namespace": "shop", "ownerReferences": None},
             "spec": {"containers": [{"name": "app", "resources": None}, {"name": "empty", "resources": {}}],
                      "initContainers": None, "nodeName": None},
             "status": {"phase": None, "containerStatuses": [{"name": "app", "restartCount": None,
                                                              "lastState": {"terminated": None}}]}}
    first, second = decode_pods(bare, nulls)
    assert first == PodRecord("shop", "pending-1", "shop/pending-1", None, "Unknown", "", None, None, [])
    assert (second.owner_kind, second.node, second.phase) == (None, None, "Unknown")
    assert second.containers == [ContainerRecord("app", None, None, None, None, 0, None),
                                 ContainerRecord("empty", None, None, None, None, 0, None)]


def stored_pod_count(settings) -> int:
    conn = sqlite3.connect(settings.database_path)
    try:
        return conn.execute("SELECT count(*) FROM pods").fetchone()[0]
    finally:
        conn.close()


def test_a_page_of_the_wrong_shape_fails_the_run_naming_the_field_without_retrying(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    page = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": "web-1", "namespace": "shop"}, "spec": {"containers": []}},
        {"metadata": {"name": 42, "namespace": "shop"}}]}
    cluster.kube.inject("/api/v1/pods", 200, times=5, body=json.dumps(page).encode())
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("failed", 500)
    assert ("Kubernetes API answered list pods with an unexpected object: Expected `str`, got `int` - at "
            "`$.items[1].metadata.name`") in body["error"]
    assert sum(1 for r in cluster.kube.requests if r.resource == "pods") == 1  # the same answer would come again
    assert stored_pod_count(settings) == 0


def test_a_page_cut_short_is_asked_for_again(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    cluster.kube.inject("/api/v1/pods", 200, times=1, body=b'{"kind":"PodList","items":[{"metadata":{"na')
    body, _ = collect_once(settings, Trigger("cli"))
    assert body["status"] == "ok"
    assert body["pods"] == len(small_scenario.pods)

    cluster.kube.inject("/api/v1/pods", 200, times=10, body=b'{"kind":"PodList","items":[{"metadata":{"na')
    body, status = collect_once(make_settings(tmp_path / "again", cluster, kube_max_retries=1), Trigger("cli"))
    assert (body["status"], status) == ("failed", 503)
    assert "list pods failed after 2 attempts: Kubernetes API answered list pods with invalid JSON: " in body["error"]


def raw_page_bytes_alive(smallest: int) -> int:
    """Bytes in live blocks of at least `smallest` bytes that the Kubernetes client allocated (a page's body)."""
    client = str(Path(__file__).resolve().parents[2] / "shared" / "sources" / "kube.py")
    return sum(trace.size for trace in tracemalloc.take_snapshot().traces
               if trace.size >= smallest and any(frame.filename == client for frame in trace.traceback))


def test_no_page_is_alive_while_the_next_page_is_asked_for(tmp_path, cluster, small_scenario):
    settings = make_settings(tmp_path, cluster)
    page_size = 8
    page_bytes = len(requests.get(cluster.kube_url + "/api/v1/pods", params={"limit": page_size}, timeout=5,
                                  headers={"Authorization": f"Bearer {cluster.token}"}).content)
    alive_when_asked: list[int] = []
    record = cluster.kube.record

    def observe(request):  # runs in the server's thread while the client waits for this page
        if request.path == "/api/v1/pods":
            alive_when_asked.append(raw_page_bytes_alive(page_bytes // 2))
        record(request)

    cluster.kube.record = observe
    credentials = load_credentials(settings)  # reads the kubeconfig: not a page
    tracemalloc.start(64)
    try:
        with KubeClient(credentials, settings) as kube:
            counts = [len(items or ()) for items in kube.list_pages(PODS, Pod, page_size=page_size)]
    finally:
        tracemalloc.stop()
    assert sum(counts) == len(small_scenario.pods) and len(alive_when_asked) == len(counts) > 2
    assert alive_when_asked == [0] * len(counts)
