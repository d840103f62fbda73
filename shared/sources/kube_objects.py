"""The few fields of Kubernetes objects the monitor reads, as msgspec Structs decoded from list pages.

A pod as the API server lists it is about 9 KB of JSON (managedFields, annotations, env, volumes,
probes, conditions, statuses) of which the monitor reads a few percent. Decoding a page into these
Structs skips every other field in C without building it, where dicts would build them all. Field
names are the API's own (camelCase); every field the API may leave out or send as null has a
default, so a sparse object decodes; a field of the wrong type fails with the path to it
("Expected `str`, got `int` - at `$.items[3].metadata.name`").
"""

from __future__ import annotations

from functools import lru_cache
from typing import Generic, TypeVar, cast

import msgspec

Quantity = str | int | float
"""A resource quantity as the JSON spells it: the API server sends strings ("250m", "1Gi")."""


class _Wire(msgspec.Struct, gc=False):
    """Decoded objects hold no cycles: keeping them out of the garbage collector saves its passes."""


class OwnerReference(_Wire):
    kind: str = ""
    name: str = ""
    controller: bool | None = None


class ObjectMeta(_Wire):
    name: str
    namespace: str = ""
    uid: str | None = None
    ownerReferences: list[OwnerReference] | None = None

    def controller(self) -> OwnerReference | None:
        """The owner reference that controls this object (Deployment's ReplicaSet, Job's CronJob), if any."""
        return next((ref for ref in self.ownerReferences or () if ref.controller), None)


class ResourceList(_Wire):
    """Requests, limits, capacity or allocatable: only CPU and memory; other resources are skipped."""

    cpu: Quantity | None = None
    memory: Quantity | None = None


class ResourceRequirements(_Wire):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Container(_Wire):
    name: str
    restartPolicy: str | None = None  # "Always" on an init container makes it a native sidecar
    resources: ResourceRequirements | None = None


class PodSpec(_Wire):
    nodeName: str | None = None
    initContainers: list[Container] | None = None
    containers: list[Container] | None = None


class TerminatedState(_Wire):
    reason: str | None = None


class ContainerState(_Wire):
    terminated: TerminatedState | None = None


class ContainerStatus(_Wire):
    name: str
    restartCount: int | None = None
    lastState: ContainerState | None = None


class PodStatus(_Wire):
    phase: str | None = None
    qosClass: str | None = None
    containerStatuses: list[ContainerStatus] | None = None
    initContainerStatuses: list[ContainerStatus] | None = None


class MonitorAnnotations(_Wire):
    """The pod annotations the monitor reads: its own `k8s-monitor.io/` ones, a workload's rightsizing policy
    (shared/domain/policies.py). Every other annotation (kubectl's last-applied-configuration, istio's
    status) is skipped undecoded."""

    ignore: str | None = msgspec.field(default=None, name="k8s-monitor.io/ignore")
    cpu_percentile: str | None = msgspec.field(default=None, name="k8s-monitor.io/cpu-percentile")
    memory_headroom: str | None = msgspec.field(default=None, name="k8s-monitor.io/memory-headroom")
    min_cpu: str | None = msgspec.field(default=None, name="k8s-monitor.io/min-cpu")
    max_cpu: str | None = msgspec.field(default=None, name="k8s-monitor.io/max-cpu")
    min_memory: str | None = msgspec.field(default=None, name="k8s-monitor.io/min-memory")
    max_memory: str | None = msgspec.field(default=None, name="k8s-monitor.io/max-memory")
    cpu_limit_policy: str | None = msgspec.field(default=None, name="k8s-monitor.io/cpu-limit-policy")
    memory_limit_policy: str | None = msgspec.field(default=None, name="k8s-monitor.io/memory-limit-policy")
    min_change_ratio: str | None = msgspec.field(default=None, name="k8s-monitor.io/min-change-ratio")
    allow_hpa: str | None = msgspec.field(default=None, name="k8s-monitor.io/allow-hpa")

    def present(self) -> dict[str, str]:
        """The annotations set, by their names (`k8s-monitor.io/cpu-percentile`), sorted. Read from the class's
        field tuples: msgspec.structs.fields() evaluates the type hints on every call (0.5 ms a pod)."""
        return {name: value for field, name in zip(self.__struct_fields__, self.__struct_encode_fields__, strict=True)
                if (value := getattr(self, field)) is not None}


class PodMeta(ObjectMeta):
    """A pod's metadata: also the monitor's annotations (its labels only in `pod_type`'s variant)."""

    annotations: MonitorAnnotations | None = None


class Pod(_Wire):
    metadata: PodMeta
    spec: PodSpec | None = None
    status: PodStatus | None = None


class GroupLabel(_Wire):
    """The one label a pod is grouped by (REPORT_GROUP_BY_LABEL), in `pod_type`'s variant of Pod."""

    value: str | None = None


@lru_cache(maxsize=8)
def pod_type(group_label: str | None) -> type[Pod]:
    """Pod, or a Pod whose `metadata.labels.value` is the `group_label` label: the one label read, the
    others skipped undecoded (no dict of labels is built per pod)."""
    if group_label is None:
        return Pod
    labels = msgspec.defstruct("GroupLabel", [("value", str | None, msgspec.field(default=None, name=group_label))],
                               bases=(GroupLabel,), gc=False)
    metadata = msgspec.defstruct("GroupedPodMeta", [("labels", labels | None, None)], bases=(PodMeta,), gc=False)
    return cast(type[Pod], msgspec.defstruct("GroupedPod", [("metadata", metadata)], bases=(Pod,), gc=False))


class NodeStatus(_Wire):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None


class Node(_Wire):
    metadata: ObjectMeta
    status: NodeStatus | None = None


class OwnedObject(_Wire):
    """A ReplicaSet or a Job: only who controls it is read, never its pod template."""

    metadata: ObjectMeta


class CrossVersionObjectReference(_Wire):
    kind: str = ""
    name: str = ""


class MetricTarget(_Wire):
    type: str = ""  # Utilization, AverageValue or Value
    averageUtilization: int | None = None  # percent of the pods' requests
    averageValue: Quantity | None = None
    value: Quantity | None = None


class ResourceMetricSource(_Wire):
    name: str = ""  # cpu or memory
    target: MetricTarget | None = None


class ContainerResourceMetricSource(_Wire):
    name: str = ""
    container: str = ""
    target: MetricTarget | None = None


class MetricSpec(_Wire):
    """One metric an HPA scales on; only Resource and ContainerResource metrics depend on requests."""

    type: str = ""  # Resource, ContainerResource, Pods, Object or External
    resource: ResourceMetricSource | None = None
    containerResource: ContainerResourceMetricSource | None = None


class HorizontalPodAutoscalerSpec(_Wire):
    scaleTargetRef: CrossVersionObjectReference | None = None
    minReplicas: int | None = None  # the API's default is 1
    maxReplicas: int = 0
    metrics: list[MetricSpec] | None = None  # the API server defaults an empty list to CPU at 80 %


class HorizontalPodAutoscalerStatus(_Wire):
    currentReplicas: int | None = None
    desiredReplicas: int | None = None


class HorizontalPodAutoscaler(_Wire):
    """An autoscaling/v2 HorizontalPodAutoscaler: what it scales, its bounds, its metrics and replicas."""

    metadata: ObjectMeta
    spec: HorizontalPodAutoscalerSpec | None = None
    status: HorizontalPodAutoscalerStatus | None = None


class ListMeta(_Wire):
    continue_: str | None = msgspec.field(default=None, name="continue")


Item = TypeVar("Item")


class ObjectList(_Wire, Generic[Item]):
    """One page of a list: its items and the token that asks for the next page."""

    items: list[Item] | None = None
    metadata: ListMeta | None = None


class Status(_Wire):
    """The Status object the API server answers an error with."""

    message: str = ""
    reason: str = ""


def list_decoder(item_type: type[Item]) -> msgspec.json.Decoder[ObjectList[Item]]:
    """The decoder of list pages of `item_type` (about a microsecond to build: once per list)."""
    return msgspec.json.Decoder(ObjectList[item_type])  # type: ignore[valid-type]
