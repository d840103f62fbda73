"""Scenario objects besides pods rendered as the Kubernetes API serves them: nodes, namespaces, owners, HPAs.

Objects carry what a real list carries (labels, annotations, conditions, node info, pod templates),
not just the fields the collector reads, so page sizes and parsing costs are realistic. Pods, the
bulk of a cluster, are rendered by pods.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.simulator.scenario import Scenario, SimHpa, SimHpaMetric, SimNode, SimPod, object_uid
from shared.simulator.wire import OWNER_API_VERSIONS, hex_id, ip, resources, timestamp


def node_object(scenario: Scenario, node: SimNode, index: int, resource_version: int) -> dict[str, Any]:
    cores = node.cpu_capacity_millicores // 1000
    address = ip("10.0", index + 1)
    heartbeat = {"lastHeartbeatTime": timestamp(scenario.epoch_seconds),
                 "lastTransitionTime": timestamp(scenario.epoch_seconds - 86400)}
    return {
        "metadata": {
            "name": node.name, "uid": object_uid(scenario.seed, "Node", "", node.name),
            "resourceVersion": str(resource_version),
            "creationTimestamp": timestamp(scenario.epoch_seconds - 120 * 86400),
            "labels": {
                "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": f"m6i.{cores // 4}xlarge",
                "topology.kubernetes.io/zone": f"eu-west-1{'abc'[index % 3]}",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "providerID": f"aws:///eu-west-1a/i-{hex_id(node.name)[:17]}"},
        "status": {
            "capacity": {"cpu": str(cores), "memory": f"{node.memory_capacity_bytes // 1024}Ki",
                         "pods": "110", "ephemeral-storage": "104845292Ki"},
            "allocatable": {"cpu": f"{node.cpu_allocatable_millicores}m",
                            "memory": f"{node.memory_allocatable_bytes // 1024}Ki",
                            "pods": "110", "ephemeral-storage": "96625420948"},
            "conditions": [
                {"type": kind, "status": "False", "reason": f"Kubelet{reason}", "message": message, **heartbeat}
                for kind, reason, message in (
                    ("MemoryPressure", "HasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "HasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "HasSufficientPID", "kubelet has sufficient PID available"),
                )
            ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "message": "kubelet is posting ready status", **heartbeat}],
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": node.name}],
            "nodeInfo": {
                "kubeletVersion": "v1.30.4", "kubeProxyVersion": "v1.30.4", "containerRuntimeVersion": "containerd://1.7.20",
                "osImage": "Ubuntu 22.04.4 LTS", "kernelVersion": "6.5.0-1024-aws", "operatingSystem": "linux",
                "architecture": "amd64", "machineID": hex_id("machine", node.name)[:32],
                "systemUUID": str(uuid.UUID(hex_id("system", node.name)[:32])),
                "bootID": str(uuid.UUID(hex_id("boot", node.name)[:32])),
            },
        },
    }


def namespace_object(scenario: Scenario, name: str, resource_version: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": object_uid(scenario.seed, "Namespace", "", name),
                     "resourceVersion": str(resource_version),
                     "creationTimestamp": timestamp(scenario.epoch_seconds - 120 * 86400),
                     "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _owner_references(scenario: Scenario, namespace: str, owner: tuple[str, str] | None) -> dict[str, Any]:
    if owner is None:
        return {}
    kind, name = owner
    return {"ownerReferences": [{"apiVersion": OWNER_API_VERSIONS[kind], "kind": kind, "name": name,
                                 "uid": object_uid(scenario.seed, kind, namespace, name),
                                 "controller": True, "blockOwnerDeletion": True}]}


def replicaset_object(scenario: Scenario, namespace: str, name: str, owner: tuple[str, str] | None,
                      pods: list[SimPod], resource_version: int) -> dict[str, Any]:
    """A ReplicaSet; an old one of a rollout has zero replicas."""
    app = owner[1] if owner else name.rsplit("-", 1)[0]
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app,
              "pod-template-hash": name.rsplit("-", 1)[-1]}
    template = pods[0] if pods else None
    ready = sum(pod.phase == "Running" for pod in pods)
    return {
        "metadata": {
            "name": name, "namespace": namespace, "uid": object_uid(scenario.seed, "ReplicaSet", namespace, name),
            "resourceVersion": str(resource_version), "generation": 1,
            "creationTimestamp": timestamp(template.created_seconds if template
                                           else scenario.epoch_seconds - 50 * 86400),
            "labels": labels, "annotations": {"deployment.kubernetes.io/desired-replicas": str(len(pods)),
                                               "deployment.kubernetes.io/max-replicas": str(len(pods) + 1),
                                               "deployment.kubernetes.io/revision": "2" if pods else "1"},
            **_owner_references(scenario, namespace, owner),
        },
        "spec": {
            "replicas": len(pods), "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": c.name, "image": c.image, "resources": resources(c, namespace, template.workload_name)}
                for c in template.containers
            ] if template else []}},
        },
        "status": {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                   "availableReplicas": ready, "observedGeneration": 1},
    }


def job_object(scenario: Scenario, namespace: str, name: str, owner: tuple[str, str] | None,
               pod: SimPod | None, resource_version: int) -> dict[str, Any]:
    created = pod.created_seconds if pod else scenario.epoch_seconds
    status: dict[str, Any] = {"startTime": timestamp(created), "ready": 0, "terminating": 0}
    if pod is not None and pod.phase == "Succeeded":
        status.update(succeeded=1, completionTime=timestamp(created + 40), conditions=[
            {"type": "Complete", "status": "True", "lastProbeTime": timestamp(created + 40),
             "lastTransitionTime": timestamp(created + 40)}])
    else:
        status.update(active=1, ready=1)
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": object_uid(scenario.seed, "Job", namespace, name),
                     "resourceVersion": str(resource_version), "generation": 1, "creationTimestamp": timestamp(created),
                     "labels": dict(pod.labels) if pod else {}, **_owner_references(scenario, namespace, owner)},
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                 "suspend": False, "template": {"spec": {"restartPolicy": "Never", "containers": [
                     {"name": c.name, "image": c.image} for c in (pod.containers if pod else ())]}}},
        "status": status,
    }


# autoscaling/v2's defaults, which the API server fills in when a manifest leaves `behavior` out
_HPA_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


def _hpa_metric(metric: SimHpaMetric) -> tuple[dict[str, Any], dict[str, Any]]:
    """A metric of the spec and its reading in the status."""
    if metric.resource is None:
        external: dict[str, Any] = {"metric": {"name": "queue_messages_ready",
                                               "selector": {"matchLabels": {"queue": "orders"}}}}
        return ({"type": metric.type, "external": {**external, "target": {
                    "type": "AverageValue", "averageValue": metric.average_value}}},
                {"type": metric.type, "external": {**external, "current": {"averageValue": "12"}}})
    key = "resource" if metric.type == "Resource" else "containerResource"
    source: dict[str, Any] = {"name": metric.resource, **({"container": metric.container} if metric.container else {})}
    used = round((metric.utilization_percent or 50) * 0.8)
    current = {"averageUtilization": used,
               "averageValue": f"{used * 3}m" if metric.resource == "cpu" else f"{used * 2}Mi"}
    return ({"type": metric.type, key: {**source, "target": {
                "type": "Utilization", "averageUtilization": metric.utilization_percent}}},
            {"type": metric.type, key: {**source, "current": current}})


def hpa_object(scenario: Scenario, hpa: SimHpa, resource_version: int) -> dict[str, Any]:
    """A HorizontalPodAutoscaler as autoscaling/v2 lists it: defaulted behavior, current metrics, conditions."""
    created = timestamp(scenario.epoch_seconds - 30 * 86400)
    seen = timestamp(scenario.epoch_seconds - 600)
    specs, readings = zip(*(_hpa_metric(m) for m in hpa.metrics), strict=True)
    at_max = hpa.current_replicas >= hpa.max_replicas
    conditions = [
        {"type": "AbleToScale", "status": "True", "lastTransitionTime": created, "reason": "ReadyForNewScale",
         "message": "recommended size matches current size"},
        {"type": "ScalingActive", "status": "True", "lastTransitionTime": created, "reason": "ValidMetricFound",
         "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization"},
        {"type": "ScalingLimited", "status": "True" if at_max else "False", "lastTransitionTime": seen,
         "reason": "TooManyReplicas" if at_max else "DesiredWithinRange",
         "message": "the desired replica count is more than the maximum replica count" if at_max
         else "the desired count is within the acceptable range"},
    ]
    return {
        "metadata": {
            "name": hpa.name, "namespace": hpa.namespace,
            "uid": object_uid(scenario.seed, "HorizontalPodAutoscaler", hpa.namespace, hpa.name),
            "resourceVersion": str(resource_version), "creationTimestamp": created,
            "labels": {"app.kubernetes.io/name": hpa.target_name, "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": hpa.target_name,
                            "meta.helm.sh/release-namespace": hpa.namespace},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": OWNER_API_VERSIONS[hpa.target_kind], "kind": hpa.target_kind,
                               "name": hpa.target_name},
            "minReplicas": hpa.min_replicas, "maxReplicas": hpa.max_replicas, "metrics": list(specs),
            "behavior": _HPA_BEHAVIOR,
        },
        "status": {"lastScaleTime": seen, "currentReplicas": hpa.current_replicas,
                   "desiredReplicas": hpa.current_replicas, "currentMetrics": list(readings),
                   "conditions": conditions},
    }
