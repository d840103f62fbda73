"""The scenario's read-only collections, rendered to JSON once and listed in pages.

Pods are the bulk of a cluster: each pod's JSON is rendered once into bytes and a page is a join of
those bytes, so 10,000 pods go out in milliseconds. Pods whose status moves with time (a
crash-looping container's restart count) are rendered again when a restart has happened since their
last rendering. Items are ordered by namespace and name, as etcd keys are, so a namespace's items
are one contiguous slice.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.simulator import kube_errors, manifests
from shared.simulator.pods import PodRenderer, is_time_dependent
from shared.simulator.scenario import Scenario, SimPod
from shared.simulator.timeseries import signal


class _DynamicPod:
    """A pod whose restart counts move with time, with its latest rendering and the restarts it shows."""

    __slots__ = ("pod", "resource_version", "_signals", "_rendered")

    def __init__(self, scenario: Scenario, pod: SimPod, resource_version: int) -> None:
        self.pod, self.resource_version = pod, resource_version
        self._signals = [signal(scenario, pod, container) for container in pod.containers]
        self._rendered: tuple[tuple[int, ...], bytes] | None = None

    def render(self, renderer: PodRenderer, t: float) -> bytes:
        """The pod at `t`: rendered again only when some container restarted since the last rendering."""
        restarts = tuple(behaviour.restarts_since_epoch(t) for behaviour in self._signals)
        rendered = self._rendered
        if rendered is None or rendered[0] != restarts:
            rendered = self._rendered = (restarts, renderer.render(self.pod, t, self.resource_version))
        return rendered[1]



@dataclass(slots=True)
class Collection:
    """One resource's items, sorted by (namespace, name)."""

    kind: str
    api_version: str
    keys: list[tuple[str, str]]
    items: list[bytes | _DynamicPod]
    namespace_ranges: dict[str, tuple[int, int]]
    positions: dict[tuple[str, str], int]

    @classmethod
    def build(
        cls, kind: str, api_version: str, entries: list[tuple[tuple[str, str], bytes | _DynamicPod]],
    ) -> Collection:
        entries.sort(key=lambda entry: entry[0])
        keys = [key for key, _ in entries]
        ranges: dict[str, tuple[int, int]] = {}
        for position, (namespace, _) in enumerate(keys):
            start, _ = ranges.get(namespace, (position, position))
            ranges[namespace] = (start, position + 1)
        return cls(kind, api_version, keys, [item for _, item in entries], ranges,
                   {key: position for position, key in enumerate(keys)})


class Catalog:
    """Every listable read-only resource of one scenario."""

    def __init__(self, scenario: Scenario, first_resource_version: int) -> None:
        self.scenario = scenario
        self._next_rv = first_resource_version
        self._pods = PodRenderer(scenario)
        pods_by_owner: dict[tuple[str, str, str], list[SimPod]] = defaultdict(list)
        pod_entries: list[tuple[tuple[str, str], bytes | _DynamicPod]] = []
        for pod in scenario.pods:
            rv = self._rv()
            item: bytes | _DynamicPod = _DynamicPod(scenario, pod, rv) if is_time_dependent(pod) else (
                self._pods.render(pod, scenario.epoch_seconds, rv))
            pod_entries.append(((pod.namespace, pod.name), item))
            if pod.owner_kind and pod.owner_name:
                pods_by_owner[(pod.owner_kind, pod.namespace, pod.owner_name)].append(pod)
        self.collections = {
            "pods": Collection.build("PodList", "v1", pod_entries),
            "nodes": Collection.build("NodeList", "v1", [
                (("", node.name), _dump(manifests.node_object(scenario, node, index, self._rv())))
                for index, node in enumerate(scenario.nodes)]),
            "namespaces": Collection.build("NamespaceList", "v1", [
                (("", name), _dump(manifests.namespace_object(scenario, name, self._rv())))
                for name in scenario.namespaces]),
            "replicasets": Collection.build("ReplicaSetList", "apps/v1", [
                ((ns, name), _dump(manifests.replicaset_object(
                    scenario, ns, name, owner, pods_by_owner[("ReplicaSet", ns, name)], self._rv())))
                for (ns, name), owner in scenario.replicasets.items()]),
            "jobs": Collection.build("JobList", "batch/v1", [
                ((ns, name), _dump(manifests.job_object(
                    scenario, ns, name, owner, next(iter(pods_by_owner[("Job", ns, name)]), None), self._rv())))
                for (ns, name), owner in scenario.jobs.items()]),
            "horizontalpodautoscalers": Collection.build("HorizontalPodAutoscalerList", "autoscaling/v2", [
                ((hpa.namespace, hpa.name), _dump(manifests.hpa_object(scenario, hpa, self._rv())))
                for hpa in scenario.hpas]),
        }

    @property
    def last_resource_version(self) -> int:
        return self._next_rv - 1

    def _rv(self) -> int:
        self._next_rv += 1
        return self._next_rv - 1

    def _render(self, item: bytes | _DynamicPod, t: float) -> bytes:
        if isinstance(item, bytes):
            return item
        return item.render(self._pods, t)

    def page(self, resource: str, namespace: str | None, offset: int, limit: int, t: float,
             resource_version: int, continue_token: Callable[[int], str]) -> bytes:
        """The list body with items [offset, offset+limit) of the (namespaced) collection; when
        more remain, its metadata carries `continue_token(next_offset)` and the remaining count."""
        collection = self.collections[resource]
        whole = (0, len(collection.items))
        start, end = whole if namespace is None else collection.namespace_ranges.get(namespace, (0, 0))
        first = min(start + offset, end)
        last = min(end, first + limit) if limit > 0 else end
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if last < end:
            metadata.update({"continue": continue_token(last - start), "remainingItemCount": end - last})
        head = json.dumps({"kind": collection.kind, "apiVersion": collection.api_version, "metadata": metadata},
                          separators=(",", ":"))
        items = b",".join(self._render(item, t) for item in collection.items[first:last])
        return head[:-1].encode() + b',"items":[' + items + b"]}"

    def get(self, resource: str, namespace: str | None, name: str, t: float) -> bytes | None:
        """One object with its kind and apiVersion, or None when absent."""
        collection = self.collections[resource]
        position = collection.positions.get((namespace or "", name))
        if position is None:
            return None
        kind = collection.kind.removesuffix("List")
        head = f'{{"kind":"{kind}","apiVersion":"{collection.api_version}",'.encode()
        return head + self._render(collection.items[position], t)[1:]


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_continue(resource_version: int, offset: int, list_started_seconds: float, generation: int) -> str:
    """An opaque continue token, shaped like the API server's base64 JSON."""
    state = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": offset,
             "started": list_started_seconds, "gen": generation}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_continue(token: str) -> dict[str, Any]:
    """The state inside a continue token; 400 BadRequest when it is not one of ours."""
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if state.get("v") != "meta.k8s.io/v1" or not isinstance(state.get("start"), int) or state["start"] < 0:
            raise ValueError("unknown continue token version")
        return state
    except (binascii.Error, ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise kube_errors.bad_request(f"continue key is not valid: {exc}") from None
