"""coordination.k8s.io/v1 Leases with the API server's optimistic concurrency.

Every write takes a fresh resourceVersion from the cluster-wide counter; an update must carry the
version it read, so of two collectors racing for the lease exactly one wins and the other gets 409
Conflict, as with a real API server. Times are MicroTime: the server rejects RFC 3339 strings
without exactly six fractional digits (a classic client bug) and answers in UTC with six digits.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.simulator import kube_errors

GROUP = "coordination.k8s.io"
_MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")
_MICRO_TIME_FIELDS = ("acquireTime", "renewTime")


class LeaseStore:
    """All leases of the simulated cluster, keyed by (namespace, name)."""

    def __init__(self, next_resource_version: Callable[[], int], clock: Callable[[], float]) -> None:
        self._next_rv, self._clock = next_resource_version, clock
        self._leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._existing(namespace, name))

    def list(self, namespace: str | None, name: str | None = None) -> list[dict[str, Any]]:
        """Leases of `namespace` (all when None), only `name` when given, as list items (without
        kind and apiVersion)."""
        with self._lock:
            return [{"metadata": copy.deepcopy(lease["metadata"]), "spec": copy.deepcopy(lease["spec"])}
                    for (ns, n), lease in sorted(self._leases.items()) if namespace in (None, ns) and name in (None, n)]

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        metadata = _metadata(body, namespace)
        name = metadata.get("name") or ""
        if not name:
            raise kube_errors.invalid("Lease", GROUP, "", "metadata.name", '""', "name or generateName is required")
        spec = _spec(body, name)
        with self._lock:
            if (namespace, name) in self._leases:
                raise kube_errors.already_exists("leases", GROUP, name)
            lease = {
                "kind": "Lease", "apiVersion": f"{GROUP}/v1",
                "metadata": {
                    **_user_metadata(metadata), "name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                    "resourceVersion": str(self._next_rv()),
                    "creationTimestamp": datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "spec": spec,
            }
            self._leases[(namespace, name)] = lease
            return copy.deepcopy(lease)

    def update(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        metadata = _metadata(body, namespace)
        if metadata.get("name") != name:
            raise kube_errors.bad_request(
                f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})")
        spec = _spec(body, name)
        with self._lock:
            lease = self._existing(namespace, name)
            sent_rv = metadata.get("resourceVersion")
            if not sent_rv:
                raise kube_errors.invalid("Lease", GROUP, name, "metadata.resourceVersion", "0x0",
                                          "must be specified for an update")
            if sent_rv != lease["metadata"]["resourceVersion"]:
                raise kube_errors.conflict("leases", GROUP, name)
            lease["metadata"].update(_user_metadata(metadata), resourceVersion=str(self._next_rv()))
            lease["spec"] = spec
            return copy.deepcopy(lease)

    def delete(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Delete, honouring `preconditions.resourceVersion`; answers the Status the server sends."""
        with self._lock:
            lease = self._existing(namespace, name)
            wanted_rv = (body.get("preconditions") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != lease["metadata"]["resourceVersion"]:
                raise kube_errors.conflict("leases", GROUP, name)
            del self._leases[(namespace, name)]
            self._next_rv()
            return {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": GROUP, "kind": "leases", "uid": lease["metadata"]["uid"]},
            }

    def _existing(self, namespace: str, name: str) -> dict[str, Any]:
        lease = self._leases.get((namespace, name))
        if lease is None:
            raise kube_errors.not_found("leases", GROUP, name)
        return lease


def _metadata(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise kube_errors.bad_request("Lease in version \"v1\" cannot be handled as a Lease: body is not an object")
    metadata = body.get("metadata") or {}
    if metadata.get("namespace") not in (None, "", namespace):
        raise kube_errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request")
    return metadata


def _user_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: metadata[key] for key in ("labels", "annotations") if key in metadata}


def _spec(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec as the server stores it: MicroTimes checked and normalised, durations validated."""
    spec = dict(body.get("spec") or {})
    for field in _MICRO_TIME_FIELDS:
        value = spec.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not _MICRO_TIME.fullmatch(value):
            raise kube_errors.bad_request(
                f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as'
                ' "2006-01-02T15:04:05.000000Z07:00": cannot parse as a MicroTime (six fractional digits required)')
        moment = datetime.fromisoformat(value).astimezone(UTC)
        spec[field] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for field in ("leaseDurationSeconds", "leaseTransitions"):
        value = spec.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise kube_errors.bad_request(
                f'Lease in version "v1" cannot be handled as a Lease: spec.{field}: expected an integer')
        if value < (1 if field == "leaseDurationSeconds" else 0):
            detail = ("must be greater than 0" if field == "leaseDurationSeconds"
                      else "must be greater than or equal to 0")
            raise kube_errors.invalid("Lease", GROUP, name, f"spec.{field}", value, detail)
    return spec
