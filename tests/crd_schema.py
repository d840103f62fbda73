"""Offline stand-ins for the cluster's checks of knative/: a kustomize build and the CRD schemas.

There is no kubectl or kustomize binary here, so `build_kustomization` renders the subset of
kustomize that knative/ uses (resources, images, configMapGenerator without name hashes) and
refuses any other field, so a kustomization that outgrows it fails loudly instead of being
half-checked. The Knative CRDs' `openAPIV3Schema` becomes a JSON Schema that, like the API server's
pruning, rejects fields the schema does not declare unless it preserves unknown fields there.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

KNATIVE_CRD_DIR = Path(os.environ.get("KNATIVE_CRD_DIR", Path(__file__).parent / "schemas" / "knative"))
_KUSTOMIZATION_FIELDS = frozenset({"apiVersion", "kind", "resources", "images", "configMapGenerator"})
_GENERATOR_FIELDS = frozenset({"name", "namespace", "files", "options"})
_GENERATOR_OPTIONS = frozenset({"labels", "disableNameSuffixHash"})
_FLAG = re.compile(r"behind a feature flag - (\S+)")


class KustomizeError(ValueError):
    """The kustomization uses something this offline build does not model, or is broken."""


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def build_kustomization(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize directory` prints, as objects, for the fields knative/ uses."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - _KUSTOMIZATION_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}/kustomization.yaml uses {sorted(unknown)}, not modelled by this build")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources") or ():
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(build_kustomization(path))
        elif path.is_file():
            objects.extend(load_yaml_documents(path))
        else:
            raise KustomizeError(f"{directory}/kustomization.yaml: resource {entry} does not exist")
    objects.extend(_generated_config_map(directory, generator) for generator in kustomization.get("configMapGenerator") or ())
    for image in kustomization.get("images") or ():
        for obj in objects:
            _set_image(obj, image)
    _refuse_duplicates(objects)
    return objects


def _generated_config_map(directory: Path, generator: dict[str, Any]) -> dict[str, Any]:
    options = generator.get("options") or {}
    unknown = (set(generator) - _GENERATOR_FIELDS) | (set(options) - _GENERATOR_OPTIONS)
    if unknown:
        raise KustomizeError(f"configMapGenerator {generator.get('name')} uses {sorted(unknown)}, not modelled")
    if not options.get("disableNameSuffixHash"):
        raise KustomizeError(f"configMapGenerator {generator['name']}: name hashes are not modelled")
    data = {}
    for entry in generator.get("files") or ():
        key, _, file_name = entry.rpartition("=") if "=" in entry else (Path(entry).name, "", entry)
        path = directory / file_name
        if not path.resolve().is_relative_to(directory.resolve()):
            raise KustomizeError(f"{entry}: kustomize only loads files inside the kustomization's directory")
        data[key] = path.read_text(encoding="utf-8")
    metadata: dict[str, Any] = {"name": generator["name"]}
    if generator.get("namespace"):
        metadata["namespace"] = generator["namespace"]
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _set_image(node: Any, image: dict[str, str]) -> None:
    """kustomize's images transformer: every containers/initContainers entry naming the image."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    name = re.split(r"[@:]", container.get("image", ""), maxsplit=1)[0]
                    if name == image["name"]:
                        container["image"] = image.get("newName", name) + (
                            f":{image['newTag']}" if "newTag" in image else "")
            else:
                _set_image(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, image)


def object_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what kustomize requires to be unique."""
    metadata = obj.get("metadata") or {}
    return obj.get("apiVersion", ""), obj.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", "")


def _refuse_duplicates(objects: list[dict[str, Any]]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise KustomizeError(f"{'/'.join(key)} is defined twice")
        seen.add(key)


# --- Knative CRD schemas ---------------------------------------------------------------------------


def crd_schemas(directory: Path = KNATIVE_CRD_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the v1 openAPIV3Schema of each CRD file in `directory`, as stored."""
    schemas = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in load_yaml_documents(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version["name"] == "v1":
                    schemas[(f"{group}/v1", kind)] = version["schema"]["openAPIV3Schema"]
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
