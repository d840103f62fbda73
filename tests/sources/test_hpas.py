"""HPAs read from autoscaling/v2 lists: what they scale, on what, and whether that depends on a container's request."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from shared.simulator.cluster import SimulatedCluster
from shared.sources.hpas import HpaMetric, HpaRecord, parse_hpa
from shared.sources.inventory import read_inventory
from shared.sources.kube import KubeClient
from shared.sources.kube_credentials import load_credentials
from shared.sources.kube_objects import HorizontalPodAutoscaler, list_decoder
from tests.conftest import make_settings

PAGE = {"kind": "HorizontalPodAutoscalerList", "apiVersion": "autoscaling/v2", "metadata": {}, "items": [
    {"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "annotations": {"a": "b"}},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2,
              "maxReplicas": 10, "metrics": [
                  {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                               "averageUtilization": 70}}},
                  {"type": "ContainerResource", "containerResource": {
                      "name": "memory", "container": "app",
                      "target": {"type": "Utilization", "averageUtilization": 80}}},
                  {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                                  "averageValue": "500Mi"}}},
                  {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value",
                                                                                            "value": "30"}}}],
              "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}},
     "status": {"currentReplicas": 10, "desiredReplicas": 12, "currentMetrics": [], "conditions": []}},
    {"metadata": {"name": "bare", "namespace": "shop"},  # no metrics: the API server's default, CPU at 80 %
     "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "db"}, "maxReplicas": 3}},
]}


def test_hpas_decode_into_records_of_what_the_report_needs() -> None:
    page = list_decoder(HorizontalPodAutoscaler).decode(json.dumps(PAGE).encode())
    web, bare = (parse_hpa(item) for item in page.items or ())
    assert web == HpaRecord("shop", "web", "Deployment", "web", 2, 10, 10, 12, [
        HpaMetric("Resource", "cpu", None, "Utilization", 70),
        HpaMetric("ContainerResource", "memory", "app", "Utilization", 80),
        HpaMetric("Resource", "memory", None, "AverageValue", None, "500Mi"),
        HpaMetric("External"),
    ])
    assert bare == HpaRecord("shop", "bare", "StatefulSet", "db", 1, 3, None, None,
                             [HpaMetric("Resource", "cpu", None, "Utilization", 80)])
    assert [m.describe() for m in web.metrics] == [
        "CPU utilisation 70%", "memory of container app utilisation 80%", "memory AverageValue 500Mi",
        "External metric"]


def test_only_utilisation_of_a_resource_over_the_containers_request_depends_on_it() -> None:
    cpu, container_memory, memory_value, external = parse_hpa(
        list_decoder(HorizontalPodAutoscaler).decode(json.dumps(PAGE).encode()).items[0]).metrics  # type: ignore[index]
    assert cpu.scales_on_request("cpu", "app") and cpu.scales_on_request("cpu", "sidecar")
    assert not cpu.scales_on_request("memory", "app")
    assert container_memory.scales_on_request("memory", "app")
    assert not container_memory.scales_on_request("memory", "sidecar")
    assert not memory_value.scales_on_request("memory", "app")  # an AverageValue target ignores requests
    assert not external.scales_on_request("cpu", "app")


def test_a_cluster_without_autoscaling_v2_gives_pods_and_says_why_hpas_are_unknown(
        tmp_path: Path, cluster: SimulatedCluster) -> None:
    cluster.set_scenario(dataclasses.replace(cluster.scenario, unserved=frozenset({"horizontalpodautoscalers"})))
    settings = make_settings(tmp_path, cluster)
    with KubeClient(load_credentials(settings), settings) as kube:
        inventory = read_inventory(kube, None)
    assert inventory.pods and inventory.hpas == []
    assert inventory.hpas_error is not None and inventory.hpas_error.startswith(
        "the API server does not serve autoscaling/v2 (Kubernetes before 1.23): ")


def test_hpas_are_read_in_each_namespace_of_the_scope(tmp_path: Path, cluster: SimulatedCluster) -> None:
    scenario = cluster.scenario
    namespace = scenario.hpas[0].namespace
    settings = make_settings(tmp_path, cluster)
    with KubeClient(load_credentials(settings), settings) as kube:
        inventory = read_inventory(kube, (namespace,))
    assert {(h.namespace, h.name) for h in inventory.hpas} == {
        (h.namespace, h.name) for h in scenario.hpas if h.namespace == namespace}
    assert any(r.path == f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
               for r in cluster.kube.requests)
