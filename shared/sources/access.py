"""Whether these credentials may make a Kubernetes API call, found out without making it.

A SelfSubjectAccessReview answers for any verb and reads nothing: the API server evaluates RBAC
for the asking credentials and says yes or no. `create` on reviews is granted to every
authenticated user by the default `system:basic-user` ClusterRole, but a cluster may take it away:
then a read can still be asked by trying it on one item (`try_read`); a write cannot be tried
without changing the cluster. Health and diagnose both ask this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from shared.sources.kube import (
    SELF_SUBJECT_ACCESS_REVIEWS,
    KubeClient,
    KubeError,
    KubeForbidden,
    KubeNotFound,
    Resource,
)

READ_VERBS = frozenset({"get", "list"})


class ReviewsRefused(KubeError):
    """These credentials may not create SelfSubjectAccessReviews (403), or the API server serves none (404)."""


@dataclass(frozen=True)
class Access:
    """The answer to "may I?"; when not, `reason` says why in the API server's (or the client's) words."""

    allowed: bool
    reason: str = ""


def can_i(kube: KubeClient, verb: str, resource: Resource, namespace: str | None = None,
          name: str | None = None) -> Access:
    """Allowed or not, as a SelfSubjectAccessReview answers: nothing is read or changed.

    `namespace` None asks cluster-wide; `name` asks about one object (a rule with resourceNames).
    Raises ReviewsRefused when reviews themselves are refused, and the client's KubeError otherwise
    (rejected credentials, an unreachable server).
    """
    attributes = {"verb": verb, "resource": resource.plural, "group": resource.group}
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    try:
        review = kube.request("POST", SELF_SUBJECT_ACCESS_REVIEWS, verb="create", body={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}})
    except (KubeForbidden, KubeNotFound) as exc:
        if exc.status == HTTPStatus.UNAUTHORIZED:
            raise  # nothing will be answered to these credentials, by review or by trying
        raise ReviewsRefused(str(exc), exc.status, exc.reason) from None
    status = review.get("status") or {}
    if status.get("allowed"):
        return Access(True)
    return Access(False, status.get("reason") or status.get("evaluationError") or "no RBAC rule allows it")


def try_read(kube: KubeClient, verb: str, resource: Resource, namespace: str | None = None,
             name: str | None = None) -> Access:
    """Allowed or not, found by reading (one item of a list): for where reviews are refused.

    Only READ_VERBS can be tried; a 404 means allowed to look with nothing there yet (a Lease
    before the first collection). Raises the client's KubeError for anything but a refusal.
    """
    if verb not in READ_VERBS:
        raise ValueError(f"verb {verb!r} cannot be tried without changing the cluster; only {sorted(READ_VERBS)}")
    try:
        kube.request("GET", resource, namespace, name, verb=verb, params={"limit": 1} if verb == "list" else None)
    except KubeNotFound:
        pass
    except KubeForbidden as exc:
        if exc.status == HTTPStatus.UNAUTHORIZED:
            raise
        return Access(False, str(exc))
    return Access(True)
