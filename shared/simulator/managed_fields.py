"""`metadata.managedFields` as server-side apply records it: which manager owns which field.

On a real pod this is the largest block after the spec: one entry per writer (the controller that
created the pod, the kubelet for its status), each holding a FieldsV1 tree that mirrors the fields
it set: maps as "f:<name>", list items with a merge key as "k:{...}", every owned map marked ".".
"""

from __future__ import annotations

from typing import Any

import orjson

# The merge key of the lists whose items are tracked one by one (containers by name, ports by port...).
_MERGE_KEYS = {"containers": ("name",), "initContainers": ("name",), "env": ("name",), "volumes": ("name",),
               "volumeMounts": ("mountPath",), "ports": ("containerPort", "protocol"), "conditions": ("type",),
               "podIPs": ("ip",), "hostIPs": ("ip",), "ownerReferences": ("uid",)}
# Maps owned as a whole (x-kubernetes-map-type: atomic): their inner fields are not listed.
_ATOMIC = frozenset({"fieldRef", "resourceFieldRef", "secretKeyRef", "configMapKeyRef", "configMapRef",
                     "labelSelector"})


def fields_v1(value: dict[str, Any]) -> dict[str, Any]:
    """The FieldsV1 tree of the fields set in `value`."""
    tree: dict[str, Any] = {}
    for name, child in value.items():
        tree[f"f:{name}"] = _field(name, child)
    return tree


def _field(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {".": {}, **fields_v1(value)} if value and name not in _ATOMIC else {}
    keys = _MERGE_KEYS.get(name)
    if isinstance(value, list) and keys:
        items: dict[str, Any] = {".": {}}
        for item in value:
            key = orjson.dumps({k: item[k] for k in keys if k in item}).decode()
            items[f"k:{key}"] = {".": {}, **fields_v1(item)}
        return items
    return {}  # a scalar, or an atomic list (args, tolerations, container statuses) owned as a whole


def entry(manager: str, at: str, fields: dict[str, Any], subresource: str | None = None,
          operation: str = "Update") -> dict[str, Any]:
    """One managedFields entry: `manager` set `fields` at `at`."""
    record: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": "v1", "time": at,
                              "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        record["subresource"] = subresource
    return record
