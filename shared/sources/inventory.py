"""What every container asks for, and the HPAs that scale them, read from the Kubernetes API into small records.

Pods are read page by page, each page decoded into the Structs of kube_objects.py (only the fields
the monitor stores), so a run holds one page and the records: about 500 bytes per pod. Each pod is
named after its top workload: Deployment through its ReplicaSet, CronJob through its Job,
StatefulSet and DaemonSet directly, and the pod itself when bare. Without
RBAC to list ReplicaSets or Jobs (or nodes), the pods are still the run: they keep their immediate
owner's name, and the inventory says why. Without RBAC to list HPAs (or on a cluster that does not
serve autoscaling/v2), the HPAs are unknown, and the inventory says why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING

import msgspec

from shared.sources.hpas import HpaRecord, read_hpas
from shared.sources.kube import (
    JOBS,
    NODES,
    PODS,
    REPLICASETS,
    KubeClient,
    KubeError,
    KubeForbidden,
    KubeNotFound,
    Resource,
)
from shared.sources.kube_objects import (
    Container,
    ContainerStatus,
    GroupLabel,
    Node,
    OwnedObject,
    Pod,
    PodSpec,
    PodStatus,
    Quantity,
    pod_type,
)
from shared.sources.quantity import QuantityError, cpu_millicores, memory_bytes

if TYPE_CHECKING:
    from shared.core.deadline import Deadline


class ContainerRecord(msgspec.Struct, gc=False):
    """One running container of a pod, as its spec and status describe it."""

    name: str
    cpu_request_millicores: int | None
    cpu_limit_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None
    restart_count: int
    last_termination_reason: str | None


class PodRecord(msgspec.Struct, gc=False):
    """A pod with its owner resolved to the top workload.

    A Struct, not a dataclass: 100,000 of them are built per run on a large cluster, and a Struct is
    built in C, is smaller, and (holding no cycles) stays out of the garbage collector's passes.
    """

    namespace: str
    name: str
    uid: str
    node: str | None
    phase: str
    qos_class: str
    owner_kind: str | None
    owner_name: str | None
    containers: list[ContainerRecord]
    workload_kind: str = "Pod"
    workload_name: str = ""
    annotations: dict[str, str] | None = None  # its k8s-monitor.io/ annotations (a rightsizing policy); None: none
    group: str | None = None  # the value of its REPORT_GROUP_BY_LABEL label
    sidecars: list[str] | None = None  # its native sidecars: containers declared under spec.initContainers


class NodeRecord(msgspec.Struct, frozen=True, gc=False):
    """A node's capacity and what is allocatable to pods."""

    name: str
    cpu_capacity_millicores: int | None
    cpu_allocatable_millicores: int | None
    memory_capacity_bytes: int | None
    memory_allocatable_bytes: int | None


@dataclass
class Inventory:
    """Everything one run read from Kubernetes."""

    pods: list[PodRecord]
    nodes: list[NodeRecord]
    nodes_error: str | None = None
    owners_errors: list[str] = field(default_factory=list)  # why some pods are named after their immediate owner
    hpas: list[HpaRecord] = field(default_factory=list)
    hpas_error: str | None = None  # why HPAs could not be listed (then `hpas` is empty, not known empty)

    @property
    def container_count(self) -> int:
        """How many containers the listed pods have, every pod counted."""
        return sum(len(pod.containers) for pod in self.pods)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces that have pods in this inventory, sorted."""
        return tuple(sorted({pod.namespace for pod in self.pods}))


_intern = sys.intern
"""Namespaces, nodes, phases, QoS classes, owners and container names repeat across thousands of pods:
each record points at one shared string instead of its own copy."""

_NO_SPEC, _NO_STATUS = PodSpec(), PodStatus()
_NO_CONTAINER_STATUS = ContainerStatus("")


def parse_pod(pod: Pod) -> PodRecord:
    """Keep only what is stored: requests/limits per running container, restarts, last termination reason,
    the monitor's annotations and the value of the label it is grouped by (decoded as `pod_type` says).

    Init containers that run to completion are left out; native sidecars are kept.
    """
    metadata, spec, status = pod.metadata, pod.spec or _NO_SPEC, pod.status or _NO_STATUS
    statuses = {s.name: s for s in chain(status.containerStatuses or (), status.initContainerStatuses or ())}
    # Native sidecars (init containers with restartPolicy Always) run beside the app and use resources.
    sidecars = [c for c in spec.initContainers or () if c.restartPolicy == "Always"]
    containers = [_container_record(c, statuses.get(c.name) or _NO_CONTAINER_STATUS)
                  for c in chain(sidecars, spec.containers or ())]
    owner = metadata.controller()
    annotations = metadata.annotations.present() if metadata.annotations else None
    labels: GroupLabel | None = getattr(metadata, "labels", None)
    group = labels.value if labels is not None else None
    return PodRecord(
        namespace=_intern(metadata.namespace),
        name=metadata.name,
        uid=metadata.uid or f"{metadata.namespace}/{metadata.name}",
        node=_intern(spec.nodeName) if spec.nodeName else None,
        phase=_intern(status.phase or "Unknown"),
        qos_class=_intern(status.qosClass or ""),
        owner_kind=_intern(owner.kind) if owner else None,
        owner_name=_intern(owner.name) if owner else None,
        containers=containers,
        annotations=annotations or None,
        group=_intern(group) if group is not None else None,
        sidecars=[c.name for c in sidecars] or None,
    )


def _container_record(container: Container, status: ContainerStatus) -> ContainerRecord:
    resources = container.resources
    requests = resources.requests if resources else None
    limits = resources.limits if resources else None
    terminated = status.lastState.terminated if status.lastState else None
    reason = terminated.reason if terminated else None
    return ContainerRecord(
        name=_intern(container.name),
        cpu_request_millicores=_cpu(requests.cpu) if requests else None,
        cpu_limit_millicores=_cpu(limits.cpu) if limits else None,
        memory_request_bytes=_memory(requests.memory) if requests else None,
        memory_limit_bytes=_memory(limits.memory) if limits else None,
        restart_count=status.restartCount or 0,
        last_termination_reason=_intern(reason) if reason else None,
    )


def parse_node(node: Node) -> NodeRecord:
    """Keep only what is stored of a node: CPU (millicores) and memory (bytes), capacity and allocatable."""
    capacity = node.status.capacity if node.status else None
    allocatable = node.status.allocatable if node.status else None
    return NodeRecord(
        name=_intern(node.metadata.name),
        cpu_capacity_millicores=_cpu(capacity.cpu) if capacity else None,
        cpu_allocatable_millicores=_cpu(allocatable.cpu) if allocatable else None,
        memory_capacity_bytes=_memory(capacity.memory) if capacity else None,
        memory_allocatable_bytes=_memory(allocatable.memory) if allocatable else None,
    )


def _cached(parse: Callable[[Quantity], int]) -> Callable[[Quantity | None], int | None]:
    """`parse`, remembering its answers: a cluster spells its quantities a few hundred ways, and equal
    amounts then share one int object."""
    remembered = lru_cache(maxsize=4096, typed=True)(parse)

    def parse_or_none(value: Quantity | None) -> int | None:
        return None if value is None else remembered(value)

    return parse_or_none


_cpu, _memory = _cached(cpu_millicores), _cached(memory_bytes)


def read_inventory(
    client: KubeClient,
    namespaces: tuple[str, ...] | None,
    exclude: tuple[str, ...] = (),
    page_size: int = 500,
    deadline: Deadline | None = None,
    group_label: str | None = None,
) -> Inventory:
    """Pods (paged), their owners, the HPAs and the nodes; `namespaces=None` means every namespace.
    Each pod keeps the value of its `group_label` label (REPORT_GROUP_BY_LABEL)."""
    scopes: tuple[str | None, ...] = namespaces if namespaces else (None,)
    excluded = set(exclude)
    pods: dict[str, PodRecord] = {}
    for scope in scopes:
        seen_before = set(pods)
        for items in client.list_pages(PODS, pod_type(group_label), scope, page_size):
            if deadline:
                deadline.check("listing pods")
            if items is None:  # the list restarted after 410 Gone: forget this scope's partial list
                pods = {uid: pod for uid, pod in pods.items() if uid in seen_before}
                continue
            for item in items:
                if item.metadata.namespace in excluded:
                    continue
                try:
                    pod = parse_pod(item)
                except QuantityError as exc:  # the API server normalises quantities: this is not a real cluster
                    name = f"{item.metadata.namespace}/{item.metadata.name}"
                    raise KubeError(f"pod {name} has a resource quantity that cannot be read: {exc}") from None
                pods[pod.uid] = pod
    owners: dict[tuple[str, str, str], tuple[str, str]] = {}
    owners_errors = []
    for resource, kind in ((REPLICASETS, "ReplicaSet"), (JOBS, "Job")):
        try:
            owners.update(_owner_map(client, resource, scopes, page_size, pods.values(), kind))
        except KubeForbidden as exc:  # the pods are the run; their top workload is a detail
            if exc.status != 403:  # 401: the credentials themselves were rejected
                raise
            owners_errors.append(f"pods owned by a {kind} are stored under its name: {exc}")
    for pod in pods.values():
        pod.workload_kind, pod.workload_name = _top_workload(pod, owners)
    hpas, hpas_error = _hpas(client, scopes, excluded, page_size)
    try:
        nodes = list({node.name: node for page in client.list_pages(NODES, Node, None, page_size)
                      for node in map(parse_node, page or ())}.values())
        nodes_error = None
    except KubeForbidden as exc:  # node capacity is a detail; the pods are the run
        nodes, nodes_error = [], str(exc)
    return Inventory(list(pods.values()), nodes, nodes_error, owners_errors, hpas, hpas_error)


def _hpas(client: KubeClient, scopes: tuple[str | None, ...], excluded: set[str],
          page_size: int) -> tuple[list[HpaRecord], str | None]:
    """The HPAs, or none and why: without them the report says it could not allow for HPAs."""
    try:
        return read_hpas(client, scopes, excluded, page_size), None
    except KubeForbidden as exc:
        if exc.status != 403:  # 401: the credentials themselves were rejected
            raise
        return [], str(exc)
    except KubeNotFound as exc:
        return [], f"the API server does not serve autoscaling/v2 (Kubernetes before 1.23): {exc}"


def _owner_map(
    client: KubeClient, resource: Resource, scopes: tuple[str | None, ...], page_size: int,
    pods: Iterable[PodRecord], kind: str,
) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(namespace, kind, name) of each ReplicaSet or Job owning a pod -> its own controller.

    Skipped when no pod has such an owner, so a cluster without Jobs never needs `list jobs`.
    """
    wanted = any(pod.owner_kind == kind for pod in pods)
    if not wanted:
        return {}
    owners: dict[tuple[str, str, str], tuple[str, str]] = {}
    for scope in scopes:
        for items in client.list_pages(resource, OwnedObject, scope, page_size):
            for item in items or ():
                ref = item.metadata.controller()
                if ref:
                    owners[(item.metadata.namespace, kind, item.metadata.name)] = (_intern(ref.kind), _intern(ref.name))
    return owners


def _top_workload(pod: PodRecord, owners: dict[tuple[str, str, str], tuple[str, str]]) -> tuple[str, str]:
    if pod.owner_kind is None or pod.owner_name is None:
        return "Pod", pod.name
    parent = owners.get((pod.namespace, pod.owner_kind, pod.owner_name))
    if parent:
        return parent
    return pod.owner_kind, pod.owner_name
