"""The few fields of Kubernetes objects the monitor reads, as msgspec Structs decoded from list pages.

A pod as the API server lists it is about 9 KB of JSON (managedFields, annotations, env, volumes,
probes, conditions, statuses) of which the monitor reads a few percent. Decoding a page into these
Structs skips every other field in C without building it, where dicts would build them all. Field
names are the API's own (camelCase); every field the API may leave out or send as null has a
default, so a sparse object decodes; a field of the wrong type fails with the path to it
("Expected `str`, got `int` - at `$.items[3].metadata.name`").
"""

from __future__ import annotations

from typing import Generic, TypeVar

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


class Pod(_Wire):
    metadata: ObjectMeta
    spec: PodSpec | None = None
    status: PodStatus | None = None


class NodeStatus(_Wire):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None


class Node(_Wire):
    metadata: ObjectMeta
    status: NodeStatus | None = None


class OwnedObject(_Wire):
    """A ReplicaSet or a Job: only who controls it is read, never its pod template."""

    metadata: ObjectMeta


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
