"""The API server's check of custom resources, offline: the vendored CRD schemas as strict JSON Schemas.

`tests/schemas/<project>/` holds unmodified CustomResourceDefinition files (Knative Serving and
Eventing, the Prometheus Operator). Each served version's `openAPIV3Schema` becomes a JSON Schema
that, like the API server's pruning, rejects fields the schema does not declare unless it preserves
unknown fields there.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
_FLAG = re.compile(r"behind a feature flag - (\S+)")


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def crd_schemas(directory: Path = SCHEMAS_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of every served version of each CRD under `directory`."""
    schemas = {}
    for path in sorted(directory.rglob("*.yaml")):
        for crd in load_yaml_documents(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def strict_json_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema as a JSON Schema that rejects undeclared fields, as the API server prunes them.

    apiVersion, kind and metadata are implicit in every CRD (the API server validates metadata as
    ObjectMeta itself), so they are added at the top when the CRD leaves them out.
    """
    schema = _strict(copy.deepcopy(openapi))
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object"})
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return schema


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    for properties in (node.get("properties") or {}).values():
        _strict(properties)
    if isinstance(node.get("items"), dict):
        _strict(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        _strict(node["additionalProperties"])
    for key in ("anyOf", "allOf", "oneOf"):
        for option in node.get(key) or ():
            _strict(option)
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    return node


def feature_flags_used(obj: Any, schema: dict[str, Any]) -> set[str]:
    """Knative feature flags (config-features) whose fields `obj` sets, read from the schema's
    "This is accessible behind a feature flag - <flag>" descriptions."""
    return set(_flags(obj, schema))


def _flags(obj: Any, schema: dict[str, Any]) -> Iterator[str]:
    match = _FLAG.search(schema.get("description") or "")
    if match:
        yield match.group(1)
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        for key, value in obj.items():
            if key in properties:
                yield from _flags(value, properties[key])
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            yield from _flags(item, schema["items"])
