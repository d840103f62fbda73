"""Scenario objects rendered as the Kubernetes API serves them: full pods, nodes, owners.

Objects carry what a real list carries (images, ports, env, volumes, conditions, container IDs), not
just the fields the collector reads, so page sizes and parsing costs are realistic. Quantities are
spelled in the mixed ways of real manifests (see quantities.py).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.simulator.quantities import cpu_spellings, memory_spellings, pick_spelling
from shared.simulator.scenario import Scenario, SimContainer, SimNode, SimPod, object_uid
from shared.simulator.timeseries import signal

_OWNER_API_VERSIONS = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                       "Deployment": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1"}
_EXIT_CODES = {"OOMKilled": 137, "Error": 1, "Completed": 0}


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with whole seconds, as metav1.Time serialises."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _ip(prefix: str, number: int) -> str:
    return f"{prefix}.{number // 250 % 250}.{number % 250 + 2}"


def is_time_dependent(pod: SimPod) -> bool:
    """Whether the pod's status changes with time (a crash-looping container's restart count)."""
    return any(c.restarts_per_hour > 0 for c in pod.containers)


def _resources(pod: SimPod, container: SimContainer) -> dict[str, dict[str, str]]:
    resources: dict[str, dict[str, str]] = {}
    for kind, cpu, memory in (("requests", container.cpu_request_millicores, container.memory_request_bytes),
                              ("limits", container.cpu_limit_millicores, container.memory_limit_bytes)):
        amounts = {}
        if cpu is not None:
            amounts["cpu"] = pick_spelling(cpu_spellings(cpu), pod.uid, container.name, kind, "cpu")
        if memory is not None:
            amounts["memory"] = pick_spelling(memory_spellings(memory), pod.uid, container.name, kind, "memory")
        if amounts:
            resources[kind] = amounts
    return resources


def _container_spec(pod: SimPod, container: SimContainer, main: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": container.name, "image": container.image}
    if main:
        spec["ports"] = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        spec["env"] = [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "LOG_LEVEL", "value": "info"},
        ]
    spec.update(
        resources=_resources(pod, container),
        volumeMounts=[{"name": "kube-api-access", "readOnly": True,
                       "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
        terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File",
        imagePullPolicy="IfNotPresent",
    )
    return spec


def _container_status(scenario: Scenario, pod: SimPod, container: SimContainer, t: float, init: bool) -> dict[str, Any]:
    container_id = "containerd://" + _hex_id(pod.uid, container.name)
    started = pod.created_seconds + (2 if init else 8)
    status: dict[str, Any] = {"name": container.name, "state": {}, "lastState": {}}
    if init or pod.phase == "Succeeded":
        status["state"] = {"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": timestamp(started),
            "finishedAt": timestamp(started + 5), "containerID": container_id,
        }}
        status.update(ready=False, restartCount=0)
    else:
        behaviour = signal(scenario, pod, container)
        restart_count = behaviour.restart_count_at(t)
        if container.last_termination_reason:
            finished = behaviour.last_restart_seconds(t) or scenario.epoch_seconds - 1800
            status["lastState"] = {"terminated": {
                "exitCode": _EXIT_CODES.get(container.last_termination_reason, 1),
                "reason": container.last_termination_reason, "startedAt": timestamp(max(started, finished - 600)),
                "finishedAt": timestamp(finished),
                "containerID": "containerd://" + _hex_id(pod.uid, container.name, str(restart_count - 1)),
            }}
            started = finished + 10
            container_id = "containerd://" + _hex_id(pod.uid, container.name, str(restart_count))
        status["state"] = {"running": {"startedAt": timestamp(started)}}
        status.update(ready=True, restartCount=restart_count)
    image_digest = _hex_id(container.image)
    status.update(image=container.image, imageID=f"{container.image.split(':')[0]}@sha256:{image_digest}",
                  containerID=container_id, started=not init and pod.phase == "Running")
    return status


def _conditions(pod: SimPod) -> list[dict[str, Any]]:
    scheduled_at = timestamp(pod.created_seconds)
    ready_at = timestamp(pod.created_seconds + 12)
    if pod.phase == "Pending":
        return [{"type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": scheduled_at,
                 "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:"
                            " 3 No preemption victims found for incoming pod."}]
    ready = "True" if pod.phase == "Running" else "False"
    conditions: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": ready},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": ready},
        {"type": "ContainersReady", "status": ready},
        {"type": "PodScheduled", "status": "True"},
    ]
    for condition in conditions:
        condition.update(lastProbeTime=None, lastTransitionTime=ready_at)
        if condition["status"] == "False":
            condition["reason"] = "PodCompleted"
    return conditions


def pod_object(scenario: Scenario, pod: SimPod, t: float, resource_version: int) -> dict[str, Any]:
    """The pod as `GET /api/v1/pods` lists it at time `t`."""
    metadata: dict[str, Any] = {
        "name": pod.name, "namespace": pod.namespace, "uid": pod.uid, "resourceVersion": str(resource_version),
        "creationTimestamp": timestamp(pod.created_seconds), "labels": pod.labels,
    }
    if pod.owner_kind and pod.owner_name:
        if pod.owner_kind != "StatefulSet":
            metadata["generateName"] = pod.owner_name + "-"
        metadata["ownerReferences"] = [{
            "apiVersion": _OWNER_API_VERSIONS[pod.owner_kind], "kind": pod.owner_kind, "name": pod.owner_name,
            "uid": object_uid(scenario.seed, pod.owner_kind, pod.namespace, pod.owner_name),
            "controller": True, "blockOwnerDeletion": True,
        }]
    spec: dict[str, Any] = {
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        ]}}],
        "containers": [_container_spec(pod, c, index == 0) for index, c in enumerate(pod.containers)],
        "restartPolicy": "Never" if pod.owner_kind == "Job" else "Always",
        "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
        "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ],
    }
    if pod.init_containers:
        spec["initContainers"] = [_container_spec(pod, c, False) for c in pod.init_containers]
    status: dict[str, Any] = {"phase": pod.phase, "conditions": _conditions(pod), "qosClass": pod.qos_class}
    if pod.node is not None:
        spec["nodeName"] = pod.node
        node_ip = _ip("10.0", int(pod.node.rsplit("-", 1)[-1]))
        pod_ip = _ip("10.244", int(pod.uid[:8], 16))
        status.update(hostIP=node_ip, hostIPs=[{"ip": node_ip}], podIP=pod_ip, podIPs=[{"ip": pod_ip}],
                      startTime=timestamp(pod.created_seconds + 1))
        if pod.init_containers:
            status["initContainerStatuses"] = [_container_status(scenario, pod, c, t, True)
                                               for c in pod.init_containers]
        status["containerStatuses"] = [_container_status(scenario, pod, c, t, False) for c in pod.containers]
    return {"metadata": metadata, "spec": spec, "status": status}


def node_object(scenario: Scenario, node: SimNode, index: int, resource_version: int) -> dict[str, Any]:
    cores = node.cpu_capacity_millicores // 1000
    address = _ip("10.0", index + 1)
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
        "spec": {"podCIDR": f"10.244.{index}.0/24", "providerID": f"aws:///eu-west-1a/i-{_hex_id(node.name)[:17]}"},
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
                "architecture": "amd64", "machineID": _hex_id("machine", node.name)[:32],
                "systemUUID": str(uuid.UUID(_hex_id("system", node.name)[:32])),
                "bootID": str(uuid.UUID(_hex_id("boot", node.name)[:32])),
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
    return {"ownerReferences": [{"apiVersion": _OWNER_API_VERSIONS[kind], "kind": kind, "name": name,
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
                {"name": c.name, "image": c.image, "resources": _resources(template, c)} for c in template.containers
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
