"""What every container asks for, read from the Kubernetes API into small records.

Pods are read page by page and only the fields the monitor stores are kept, so memory stays flat on
large clusters. Each pod is named after its top workload: Deployment through its ReplicaSet,
CronJob through its Job, StatefulSet and DaemonSet directly, and the pod itself when bare. Without
RBAC to list ReplicaSets or Jobs (or nodes), the pods are still the run: they keep their immediate
owner's name, and the inventory says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.sources.kube import JOBS, NODES, PODS, REPLICASETS, KubeClient, KubeError, KubeForbidden, Resource
from shared.sources.quantity import QuantityError, cpu_millicores, memory_bytes

if TYPE_CHECKING:
    from shared.core.deadline import Deadline


@dataclass(slots=True)
class ContainerRecord:
    """One running container of a pod, as its spec and status describe it."""

    name: str
    cpu_request_millicores: int | None
    cpu_limit_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None
    restart_count: int
    last_termination_reason: str | None


@dataclass(slots=True)
class PodRecord:
    """A pod with its owner resolved to the top workload."""

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


@dataclass(frozen=True, slots=True)
class NodeRecord:
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

    @property
    def container_count(self) -> int:
        """How many containers the listed pods have, every pod counted."""
        return sum(len(pod.containers) for pod in self.pods)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces that have pods in this inventory, sorted."""
        return tuple(sorted({pod.namespace for pod in self.pods}))


def parse_pod(item: dict) -> PodRecord:
    """Keep only what is stored: requests/limits per running container, restarts, last termination reason.

    Init containers that run to completion are left out; native sidecars are kept.
    """
    metadata, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
    statuses = {s.get("name"): s for key in ("containerStatuses", "initContainerStatuses")
                for s in status.get(key) or ()}
    # Native sidecars (init containers with restartPolicy Always) run beside the app and use resources.
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    containers = []
    for container in [*sidecars, *(spec.get("containers") or ())]:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        state = statuses.get(container["name"]) or {}
        terminated = ((state.get("lastState") or {}).get("terminated") or {})
        containers.append(ContainerRecord(
            name=container["name"],
            cpu_request_millicores=_maybe(cpu_millicores, requests.get("cpu")),
            cpu_limit_millicores=_maybe(cpu_millicores, limits.get("cpu")),
            memory_request_bytes=_maybe(memory_bytes, requests.get("memory")),
            memory_limit_bytes=_maybe(memory_bytes, limits.get("memory")),
            restart_count=int(state.get("restartCount") or 0),
            last_termination_reason=terminated.get("reason"),
        ))
    owner = next((ref for ref in metadata.get("ownerReferences") or () if ref.get("controller")), None)
    return PodRecord(
        namespace=metadata["namespace"],
        name=metadata["name"],
        uid=metadata.get("uid") or f"{metadata['namespace']}/{metadata['name']}",
        node=spec.get("nodeName"),
        phase=status.get("phase") or "Unknown",
        qos_class=status.get("qosClass") or "",
        owner_kind=owner.get("kind") if owner else None,
        owner_name=owner.get("name") if owner else None,
        containers=containers,
    )


def parse_node(item: dict) -> NodeRecord:
    """Keep only what is stored of a node: CPU (millicores) and memory (bytes), capacity and allocatable."""
    status = item.get("status") or {}
    capacity, allocatable = status.get("capacity") or {}, status.get("allocatable") or {}
    return NodeRecord(
        name=item["metadata"]["name"],
        cpu_capacity_millicores=_maybe(cpu_millicores, capacity.get("cpu")),
        cpu_allocatable_millicores=_maybe(cpu_millicores, allocatable.get("cpu")),
        memory_capacity_bytes=_maybe(memory_bytes, capacity.get("memory")),
        memory_allocatable_bytes=_maybe(memory_bytes, allocatable.get("memory")),
    )


def _maybe(parse: Callable[[str], int], value: str | None) -> int | None:
    return None if value is None else parse(value)


def read_inventory(
    client: KubeClient,
    namespaces: tuple[str, ...] | None,
    exclude: tuple[str, ...] = (),
    page_size: int = 500,
    deadline: Deadline | None = None,
) -> Inventory:
    """Pods (paged), their owners and the nodes; `namespaces=None` means every namespace."""
    scopes: tuple[str | None, ...] = namespaces if namespaces else (None,)
    excluded = set(exclude)
    pods: dict[str, PodRecord] = {}
    for scope in scopes:
        seen_before = set(pods)
        for items in client.list_pages(PODS, scope, page_size):
            if deadline:
                deadline.check("listing pods")
            if items is None:  # the list restarted after 410 Gone: forget this scope's partial list
                pods = {uid: pod for uid, pod in pods.items() if uid in seen_before}
                continue
            for item in items:
                if item["metadata"]["namespace"] in excluded:
                    continue
                try:
                    pod = parse_pod(item)
                except QuantityError as exc:  # the API server normalises quantities: this is not a real cluster
                    name = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
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
    try:
        nodes = list({node.name: node for page in client.list_pages(NODES, None, page_size)
                      for node in map(parse_node, page or ())}.values())
        nodes_error = None
    except KubeForbidden as exc:  # node capacity is a detail; the pods are the run
        nodes, nodes_error = [], str(exc)
    return Inventory(list(pods.values()), nodes, nodes_error, owners_errors)


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
        for items in client.list_pages(resource, scope, page_size):
            for item in items or ():
                metadata = item["metadata"]
                ref = next((r for r in metadata.get("ownerReferences") or () if r.get("controller")), None)
                if ref:
                    owners[(metadata["namespace"], kind, metadata["name"])] = (ref["kind"], ref["name"])
    return owners


def _top_workload(pod: PodRecord, owners: dict[tuple[str, str, str], tuple[str, str]]) -> tuple[str, str]:
    if pod.owner_kind is None or pod.owner_name is None:
        return "Pod", pod.name
    parent = owners.get((pod.namespace, pod.owner_kind, pod.owner_name))
    if parent:
        return parent
    return pod.owner_kind, pod.owner_name
