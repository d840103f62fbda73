"""Pods rendered as a real API server lists them: about 9 KB of JSON each, most of it unread by the monitor.

Real pods carry managedFields, annotations (istio's sidecar status, config checksums, kubectl's
last-applied-configuration on bare pods), Helm labels, env, envFrom, args, probes, security
contexts, volumes and their mounts, affinity, tolerations, conditions and container statuses.
They are all here so decoding a list costs what it costs against a real cluster; the values are
deterministic functions of the scenario. Env and annotations carry quantity-like strings
("divisor": "0", resources inside last-applied-configuration) that the collector must not read.

Replicas of a workload share their template, so what a template renders to (the spec, the
controller's managedFields) is rendered once and reused: a 100,000-pod scenario renders in seconds.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from shared.simulator import managed_fields
from shared.simulator.scenario import Scenario, SimContainer, SimPod, object_uid
from shared.simulator.timeseries import signal
from shared.simulator.wire import OWNER_API_VERSIONS, dump, hex_id, ip, resources, timestamp

_EXIT_CODES = {"OOMKilled": 137, "Error": 1, "Completed": 0}
_TOKEN_VOLUME = "kube-api-access-@@@@@"  # the suffix is the pod's own, filled in per pod
_TOKEN_PLACEHOLDER = _TOKEN_VOLUME.encode()
_SERVICE_ACCOUNT_MOUNT = {"name": _TOKEN_VOLUME, "readOnly": True,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
_RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
               "readOnlyRootFilesystem": True, "runAsNonRoot": True}
_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def is_time_dependent(pod: SimPod) -> bool:
    """Whether the pod's status changes with time (a crash-looping container's restart count)."""
    return any(c.restarts_per_hour > 0 for c in pod.containers)


@dataclass(frozen=True, slots=True)
class _Traits:
    """How a workload's authors wrote it: clusters mix Helm charts, hardened manifests and bare ones."""

    helm: bool  # Helm labels, config checksums, scrape annotations
    env: bool  # a dozen env entries rather than one
    probes: bool
    hardened: bool  # security contexts and anti-affinity

    @classmethod
    def of(cls, namespace: str, workload: str) -> _Traits:
        bits = zlib.crc32(f"{namespace}/{workload}".encode())
        return cls(bits % 10 < 5, bits // 10 % 10 < 4, bits // 100 % 10 < 5, bits // 1000 % 10 < 3)


def _field_ref(path: str) -> dict[str, Any]:
    return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}


def _probe(path: str, port: str | int, delay: int, period: int = 10) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}, "initialDelaySeconds": delay,
            "timeoutSeconds": 1, "periodSeconds": period, "successThreshold": 1, "failureThreshold": 3}


def _common(container: SimContainer, salt: tuple[str, str], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resources": resources(container, *salt), "volumeMounts": [*mounts, _SERVICE_ACCOUNT_MOUNT],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"}


def _main_container(container: SimContainer, namespace: str, workload: str, traits: _Traits) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": container.name, "image": container.image,
        "args": ["--port=8080", "--config=/etc/app/config.yaml"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    }
    if traits.env:
        spec["envFrom"] = [{"configMapRef": {"name": f"{workload}-env"}}]
        spec["env"] = [
            {"name": "POD_NAME", "valueFrom": _field_ref("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": _field_ref("metadata.namespace")},
            {"name": "NODE_NAME", "valueFrom": _field_ref("spec.nodeName")},
            {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {
                "containerName": container.name, "resource": "limits.cpu", "divisor": "0"}}},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": f"{workload}-db", "key": "url"}}},
        ]
    else:
        spec["env"] = [{"name": "LOG_LEVEL", "value": "info"}]
    spec.update(_common(container, (namespace, workload), [
        {"name": "config", "readOnly": True, "mountPath": "/etc/app"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]))
    if traits.probes:
        spec.update(livenessProbe=_probe("/healthz", "http", 15), readinessProbe=_probe("/ready", "http", 5, 5))
    if traits.hardened:
        spec["securityContext"] = {**_RESTRICTED, "runAsUser": 10001, "runAsGroup": 10001}
    return spec


def _istio_proxy(container: SimContainer, namespace: str, workload: str, app_containers: list[str]) -> dict[str, Any]:
    ports = json.dumps([{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}], separators=(",", ":"))
    env = [
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
        {"name": "POD_NAME", "valueFrom": _field_ref("metadata.name")},
        {"name": "POD_NAMESPACE", "valueFrom": _field_ref("metadata.namespace")},
        {"name": "INSTANCE_IP", "valueFrom": _field_ref("status.podIP")},
        {"name": "PROXY_CONFIG", "value": "{}\n"}, {"name": "ISTIO_META_POD_PORTS", "value": ports},
        {"name": "ISTIO_META_APP_CONTAINERS", "value": ",".join(app_containers)},
        {"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "0"}}},
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
    ]
    return {
        "name": container.name, "image": container.image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel=warning",
                 "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "env": env,
        **_common(container, (namespace, workload), [
            {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
            {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
            {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
            {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
            {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"},
        ]),
        "readinessProbe": _probe("/healthz/ready", 15021, 0, 15),
        "securityContext": {**_RESTRICTED, "runAsUser": 1337, "runAsGroup": 1337},
    }


def _sidecar(container: SimContainer, namespace: str, workload: str) -> dict[str, Any]:
    port = 2020 + len(container.name)
    return {
        "name": container.name, "image": container.image,
        "args": [f"--listen=:{port}", "--config=/etc/sidecar/config.yaml"],
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        **_common(container, (namespace, workload), [
            {"name": "sidecar-config", "readOnly": True, "mountPath": "/etc/sidecar"},
        ]),
    }


def _init_container(container: SimContainer, namespace: str, workload: str) -> dict[str, Any]:
    return {
        "name": container.name, "image": container.image,
        "command": ["sh", "-c", f"until nc -z {workload}-db.{namespace}.svc.cluster.local 5432; do sleep 2; done"],
        **_common(container, (namespace, workload), [{"name": "tmp", "mountPath": "/tmp"}]),
        "securityContext": {**_RESTRICTED, "runAsUser": 10001},
    }


def _volumes(pod: SimPod, istio: bool, sidecars: bool) -> list[dict[str, Any]]:
    workload = pod.workload_name
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{workload}-config", "defaultMode": 420}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    if sidecars:
        volumes.append({"name": "sidecar-config", "configMap": {"name": f"{workload}-sidecar", "defaultMode": 420}})
    if istio:
        volumes += [
            {"name": "workload-socket", "emptyDir": {}}, {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
            {"name": "istio-data", "emptyDir": {}},
            {"name": "istio-podinfo", "downwardAPI": {"defaultMode": 420, "items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations"}}]}},
            {"name": "istio-token", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {
                "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
            {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert", "defaultMode": 420}},
        ]
    volumes.append({"name": _TOKEN_VOLUME, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                       "fieldPath": "metadata.namespace"}}]}},
    ]}})
    return volumes


def _spec(pod: SimPod) -> dict[str, Any]:
    """The pod spec without nodeName: what every replica of the workload shares."""
    ns, workload = pod.namespace, pod.workload_name
    traits = _Traits.of(ns, workload)
    istio = any(c.name == "istio-proxy" for c in pod.containers)
    main, *others = pod.containers
    containers = [_main_container(main, ns, workload, traits)]
    for container in others:
        containers.append(_istio_proxy(container, ns, workload, [main.name]) if container.name == "istio-proxy"
                          else _sidecar(container, ns, workload))
    spec: dict[str, Any] = {"volumes": _volumes(pod, istio, any(c.name != "istio-proxy" for c in others))}
    if pod.init_containers:
        spec["initContainers"] = [_init_container(c, ns, workload) for c in pod.init_containers]
    spec.update(
        containers=containers, restartPolicy="Never" if pod.owner_kind == "Job" else "Always",
        terminationGracePeriodSeconds=30, dnsPolicy="ClusterFirst",
        serviceAccountName=workload if pod.owner_kind else "default",
        serviceAccount=workload if pod.owner_kind else "default",
        securityContext={"runAsNonRoot": True, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
        if traits.hardened else {},
        schedulerName="default-scheduler", tolerations=_TOLERATIONS, priority=0, enableServiceLinks=True,
        preemptionPolicy="PreemptLowerPriority",
    )
    if traits.hardened and pod.workload_kind in ("Deployment", "StatefulSet"):
        spec["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": workload}},
                "topologyKey": "kubernetes.io/hostname"}}]}}
    return spec


def _annotations(pod: SimPod, spec: dict[str, Any]) -> dict[str, str]:
    ns, workload = pod.namespace, pod.workload_name
    if pod.owner_kind is None:  # created with `kubectl apply`: it remembers what was applied
        applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "annotations": {}, "labels": pod.labels, "name": pod.name, "namespace": ns},
            "spec": {"containers": [{"name": c["name"], "image": c["image"], "args": c["args"],
                                     "resources": c["resources"]} for c in spec["containers"]]}}
        return {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied, separators=(",", ":")) + "\n"}
    annotations = {}
    if _Traits.of(ns, workload).helm:
        annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                       "checksum/config": hex_id(ns, workload, "config")}
    if pod.workload_kind == "Deployment":
        annotations["kubectl.kubernetes.io/restartedAt"] = timestamp(pod.created_seconds - 3600)
    if any(c.name == "istio-proxy" for c in pod.containers):
        status = {"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                  "volumes": ["workload-socket", "istio-envoy", "istio-data", "istio-podinfo", "istio-token",
                              "istiod-ca-cert"],
                  "imagePullSecrets": None, "revision": "default"}
        annotations.update({
            "sidecar.istio.io/status": json.dumps(status, separators=(",", ":")), "istio.io/rev": "default",
            "kubectl.kubernetes.io/default-container": pod.containers[0].name,
            "kubectl.kubernetes.io/default-logs-container": pod.containers[0].name,
            "prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
        })
    return annotations


def _labels(pod: SimPod) -> dict[str, str]:
    workload = pod.workload_name
    if not _Traits.of(pod.namespace, workload).helm:
        return pod.labels
    return {**pod.labels, "app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": pod.namespace,
            "app.kubernetes.io/version": pod.containers[0].image.rsplit(":", 1)[-1],
            "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": f"{workload}-1.4.2"}


@dataclass(frozen=True, slots=True)
class _Template:
    """What the replicas of one workload share, rendered once."""

    spec_json: bytes  # the spec without nodeName
    spec_fields_json: bytes  # its FieldsV1 tree, as the controller owns it
    annotations: dict[str, str]
    manager: str


def _template_key(pod: SimPod) -> tuple[Any, ...]:
    def shape(containers: tuple[SimContainer, ...]) -> tuple[Any, ...]:
        return tuple((c.name, c.image, c.cpu_request_millicores, c.cpu_limit_millicores, c.memory_request_bytes,
                      c.memory_limit_bytes) for c in containers)

    bare = pod.name if pod.owner_kind is None else None  # a bare pod's last-applied-configuration names it
    return (pod.namespace, pod.workload_kind, pod.workload_name, pod.owner_kind, bare,
            shape(pod.containers), shape(pod.init_containers))


class PodRenderer:
    """Renders the pods of one scenario to JSON bytes at a moment in time."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._templates: dict[tuple[Any, ...], _Template] = {}
        self._fields: dict[tuple[Any, ...], bytes] = {}  # FieldsV1 trees by the shape they describe

    def render(self, pod: SimPod, t: float, resource_version: int) -> bytes:
        """The pod as `GET /api/v1/pods` lists it at time `t`."""
        template = self._template(pod)
        metadata = self._metadata(pod, resource_version, template)
        status = _status(self.scenario, pod, t)
        controller = dump(managed_fields.entry(template.manager, timestamp(pod.created_seconds), {}))[:-3] + (
            b'{"f:metadata":' + self._metadata_fields(metadata) + b',"f:spec":' + template.spec_fields_json + b"}}")
        kubelet = dump(managed_fields.entry("kubelet", timestamp(pod.created_seconds + 12), {}, "status"))
        kubelet = kubelet.replace(b'"fieldsV1":{}', b'"fieldsV1":' + self._status_fields(pod, status), 1)
        spec = template.spec_json
        if pod.node is not None:
            spec = spec[:-1] + b',"nodeName":' + dump(pod.node) + b"}"
        rendered = (b'{"metadata":' + dump(metadata)[:-1] + b',"managedFields":[' + controller + b"," + kubelet
                    + b']},"spec":' + spec + b',"status":' + dump(status) + b"}")
        return rendered.replace(_TOKEN_PLACEHOLDER, ("kube-api-access-" + hex_id(pod.uid)[:5]).encode())

    def _template(self, pod: SimPod) -> _Template:
        key = _template_key(pod)
        template = self._templates.get(key)
        if template is None:
            spec = _spec(pod)
            annotations = {**_annotations(pod, spec), **self.scenario.policies.get((pod.namespace, pod.workload_name),
                                                                                   {})}
            manager = "kube-controller-manager" if pod.owner_kind else "kubectl-client-side-apply"
            template = _Template(dump(spec), dump(managed_fields.fields_v1(spec)), annotations, manager)
            self._templates[key] = template
        return template

    def _metadata(self, pod: SimPod, resource_version: int, template: _Template) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": pod.name}
        if pod.owner_kind and pod.owner_kind != "StatefulSet":
            metadata["generateName"] = (pod.owner_name or "") + "-"
        metadata.update(namespace=pod.namespace, uid=pod.uid, resourceVersion=str(resource_version),
                        creationTimestamp=timestamp(pod.created_seconds), labels=_labels(pod),
                        annotations=template.annotations)
        if pod.owner_kind and pod.owner_name:
            metadata["ownerReferences"] = [{
                "apiVersion": OWNER_API_VERSIONS[pod.owner_kind], "kind": pod.owner_kind, "name": pod.owner_name,
                "uid": object_uid(self.scenario.seed, pod.owner_kind, pod.namespace, pod.owner_name),
                "controller": True, "blockOwnerDeletion": True,
            }]
        return metadata

    def _metadata_fields(self, metadata: dict[str, Any]) -> bytes:
        """The controller's FieldsV1 of the metadata: which labels and annotations it set, and its owner."""
        owners = metadata.get("ownerReferences") or [{}]
        key = ("metadata", "generateName" in metadata, tuple(metadata["labels"]), tuple(metadata["annotations"]),
               owners[0].get("uid"))
        fields = self._fields.get(key)
        if fields is None:
            owned = {name: value for name, value in metadata.items()
                     if name in ("generateName", "labels", "annotations", "ownerReferences")}
            fields = self._fields[key] = dump(managed_fields.fields_v1(owned))
        return fields

    def _status_fields(self, pod: SimPod, status: dict[str, Any]) -> bytes:
        """The kubelet's FieldsV1 of the status: its shape follows the phase; only the addresses are the pod's."""
        key = ("status", pod.phase, pod.node is not None, bool(pod.init_containers))
        fields = self._fields.get(key)
        if fields is None:
            shape = {**status}
            if "podIP" in status:
                shape.update(hostIPs=[{"ip": "@HOST_IP@"}], podIPs=[{"ip": "@POD_IP@"}])
            fields = self._fields[key] = dump(managed_fields.fields_v1({"status": shape}))
        if "podIP" in status:
            fields = fields.replace(b"@HOST_IP@", status["hostIP"].encode()).replace(b"@POD_IP@",
                                                                                   status["podIP"].encode())
        return fields


def _container_status(scenario: Scenario, pod: SimPod, container: SimContainer, t: float, init: bool) -> dict[str, Any]:
    container_id = "containerd://" + hex_id(pod.uid, container.name)
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
                "containerID": "containerd://" + hex_id(pod.uid, container.name, str(restart_count - 1)),
            }}
            started = finished + 10
            container_id = "containerd://" + hex_id(pod.uid, container.name, str(restart_count))
        status["state"] = {"running": {"startedAt": timestamp(started)}}
        status.update(ready=True, restartCount=restart_count)
    image_digest = hex_id(container.image)
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


def _status(scenario: Scenario, pod: SimPod, t: float) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": pod.phase, "conditions": _conditions(pod)}
    if pod.node is not None:
        node_ip = ip("10.0", int(pod.node.rsplit("-", 1)[-1]))
        pod_ip = ip("10.244", int(pod.uid[:8], 16))
        status.update(hostIP=node_ip, hostIPs=[{"ip": node_ip}], podIP=pod_ip, podIPs=[{"ip": pod_ip}],
                      startTime=timestamp(pod.created_seconds + 1))
        if pod.init_containers:
            status["initContainerStatuses"] = [_container_status(scenario, pod, c, t, True)
                                               for c in pod.init_containers]
        status["containerStatuses"] = [_container_status(scenario, pod, c, t, False) for c in pod.containers]
    status["qosClass"] = pod.qos_class
    return status
