"""A Kubernetes API server over a scenario, on loopback, that a client cannot tell from a real one.

It serves what the monitor reads (pods, nodes, namespaces, ReplicaSets, Jobs, HorizontalPodAutoscalers),
the Leases it writes, and SelfSubjectAccessReviews, with the real server's wire behaviour: bearer-token auth,
paginated lists with continue tokens that expire (410), RBAC denials (403) worded like the real
ones, optimistic concurrency on Leases (409), and injectable faults. Every request is logged with
its RBAC verb and resource, so tests can derive the least-privilege Role the monitor needs.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.simulator import kube_errors, leases
from shared.simulator.httpserver import LoopbackServer, Request, Response
from shared.simulator.kube_errors import ApiError
from shared.simulator.kube_lists import Catalog, decode_continue, encode_continue
from shared.simulator.scenario import Scenario

# (group, resource) -> namespaced; every group is served at version v1, autoscaling at v2 (only).
_RESOURCES = {
    ("", "pods"): True, ("", "nodes"): False, ("", "namespaces"): False,
    ("apps", "replicasets"): True, ("batch", "jobs"): True, ("autoscaling", "horizontalpodautoscalers"): True,
    (leases.GROUP, "leases"): True, ("authorization.k8s.io", "selfsubjectaccessreviews"): False,
}
_VERSIONS = {"autoscaling": "v2"}
_PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")  # system:public-info-viewer
_VERSION = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.4", "gitCommit": "a51b3b711150f57ffc1f526a640ec058514ed596",
    "gitTreeState": "clean", "buildDate": "2024-08-14T19:11:42Z", "goVersion": "go1.22.5", "compiler": "gc",
    "platform": "linux/amd64",
}
_METHOD_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "HEAD": "get"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as RBAC sees it: `verb` is list/get/create/update/patch/delete."""

    method: str
    path: str
    verb: str
    group: str
    resource: str
    namespace: str | None


@dataclass(frozen=True, slots=True)
class _Target:
    group: str
    version: str
    resource: str
    namespace: str | None
    name: str | None


def _parse_path(path: str) -> _Target | None:
    """The resource a path addresses, or None for non-resource paths."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 2:
        return None
    return _Target(group, version, rest[0], namespace, rest[1] if len(rest) == 2 else None)


def _verb(method: str, target: _Target | None) -> str:
    if target is not None and target.name is None:
        if method == "GET":
            return "list"
        if method == "DELETE":
            return "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())


class KubeApiServer(LoopbackServer):
    """The simulated API server. Start it (or use it as a context manager), then point a client
    at `url` with `token`, or at the kubeconfig `write_kubeconfig` writes."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time, token: str | None = None,
                 continue_ttl_seconds: float = 300.0) -> None:
        super().__init__()
        self.clock = clock
        self.token = token or secrets.token_urlsafe(32)
        self.continue_ttl_seconds = continue_ttl_seconds
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._resource_version = 1000
        self._token_generation = 0
        self.leases = leases.LeaseStore(self._next_resource_version, clock)
        self._catalog: Catalog
        self.set_scenario(scenario)

    @property
    def scenario(self) -> Scenario:
        return self._catalog.scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Serve another scenario from now on; lists in progress restart (their tokens answer 410)."""
        catalog = Catalog(scenario, self._next_resource_version() + 1)
        with self._lock:
            self._resource_version = max(self._resource_version, catalog.last_resource_version)
            self._catalog = catalog
            self._token_generation += 1

    def expire_continue_tokens(self) -> None:
        """Make every continue token issued so far answer 410 Gone, as after an etcd compaction."""
        with self._lock:
            self._token_generation += 1

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "simulated") -> Path:
        """A kubeconfig (JSON is valid YAML) with this server, its token and `context` as current."""
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [{"name": context,
                          "context": {"cluster": context, "user": context, "namespace": "monitoring"}}],
            "current-context": context,
        }
        target = Path(path)
        target.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        target.chmod(0o600)
        return target

    def _next_resource_version(self) -> int:
        with self._lock:
            self._resource_version += 1
            return self._resource_version

    # --- LoopbackServer --------------------------------------------------------------------------

    def record(self, request: Request) -> None:
        target = _parse_path(request.path)
        entry = RecordedRequest(
            request.method, request.path, _verb(request.method, target),
            target.group if target else "", target.resource if target else "", target.namespace if target else None,
        )
        with self._lock:
            self.requests.append(entry)

    def fault_response(self, status: int) -> Response:
        return Response(status, kube_errors.generic(status).body())

    def handle(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            return self._route(request)
        except ApiError as error:
            return Response(error.code, error.body())

    # --- routing ---------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization")
        if header is None and request.path.rstrip("/") in _PUBLIC_PATHS:
            return
        if header != f"Bearer {self.token}":
            raise kube_errors.generic(401)

    def _route(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/version":
            return _json(200, _VERSION)
        if request.path.rstrip("/") in _PUBLIC_PATHS:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        target = _parse_path(request.path)
        if target is None or target.version != _VERSIONS.get(target.group, "v1") \
                or (target.group, target.resource) not in _RESOURCES or target.resource in self.scenario.unserved:
            raise kube_errors.generic(404)
        namespaced = _RESOURCES[(target.group, target.resource)]
        if target.namespace is not None and not namespaced:
            raise kube_errors.generic(404)
        verb = _verb(request.method, target)
        if target.resource in self.scenario.denied:
            raise kube_errors.forbidden(verb, target.resource, target.group, target.namespace, target.name)
        if target.resource == "leases":
            return self._leases(request, target, verb)
        if target.resource == "selfsubjectaccessreviews":
            return self._access_review(request, verb)
        if verb == "list":
            return self._list(request, target)
        if verb == "get":
            body = self._catalog.get(target.resource, target.namespace, target.name or "", self.clock())
            if body is None:
                raise kube_errors.not_found(target.resource, target.group, target.name or "")
            return Response(200, body)
        raise kube_errors.method_not_allowed()

    def _list(self, request: Request, target: _Target) -> Response:
        now = self.clock()
        try:
            limit = int(request.param("limit") or 0)
        except ValueError:
            raise kube_errors.bad_request(f"limit: Invalid value: {request.param('limit')!r}") from None
        with self._lock:
            catalog, generation, current_rv = self._catalog, self._token_generation, self._resource_version
        token = request.param("continue")
        if token:
            state = decode_continue(token)
            if state.get("gen") != generation or now - float(state.get("started", 0)) > self.continue_ttl_seconds:
                raise kube_errors.continue_expired()
            offset, resource_version, started = state["start"], int(state["rv"]), float(state["started"])
        else:
            offset, resource_version, started = 0, current_rv, now
        body = catalog.page(target.resource, target.namespace, offset, limit, now, resource_version,
                            lambda next_offset: encode_continue(resource_version, next_offset, started, generation))
        return Response(200, body)

    def _leases(self, request: Request, target: _Target, verb: str) -> Response:
        namespace = target.namespace
        if verb == "list":
            selector = request.param("fieldSelector") or ""
            name = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
            with self._lock:
                rv = self._resource_version
            return _json(200, {"kind": "LeaseList", "apiVersion": f"{leases.GROUP}/v1",
                               "metadata": {"resourceVersion": str(rv)}, "items": self.leases.list(namespace, name)})
        if namespace is None:
            raise kube_errors.generic(404)
        if verb == "get":
            return _json(200, self.leases.get(namespace, target.name or ""))
        body = _json_body(request)
        if verb == "create" and target.name is None:
            return _json(201, self.leases.create(namespace, body))
        if verb == "update":
            return _json(200, self.leases.update(namespace, target.name or "", body))
        if verb == "delete":
            return _json(200, self.leases.delete(namespace, target.name or "", body))
        raise kube_errors.method_not_allowed()

    def _access_review(self, request: Request, verb: str) -> Response:
        if verb != "create":
            raise kube_errors.method_not_allowed()
        review = _json_body(request)
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        allowed = attributes.get("resource") not in self.scenario.denied
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = ('RBAC: allowed by ClusterRoleBinding "k8s-resource-monitor" of ClusterRole '
                                '"k8s-resource-monitor"')
        review.update(kind="SelfSubjectAccessReview", apiVersion="authorization.k8s.io/v1", status=status)
        review.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        return _json(201, review)


def _json(status: int, obj: object) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode())


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise kube_errors.bad_request(f"the body of the request was in an unknown format: {exc}") from None
    if not isinstance(body, dict):
        raise kube_errors.bad_request("the body of the request was in an unknown format: not an object")
    return body
