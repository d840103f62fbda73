"""The diagnose check of RBAC: may these credentials make each API call a collection makes?

Asked with a SelfSubjectAccessReview per call (nothing read or changed); where reviews are refused,
the reads are tried and the writes reported unchecked. Each denial comes with the rule to add to
common/base/rbac.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE, Finding, Section

if TYPE_CHECKING:
    from shared.sources.kube import KubeClient, Resource

# Objects of common/base/rbac.yaml that a missing permission is added to.
CLUSTER_ROLE = "k8s-resource-monitor-reader"
LEASE_ROLE = "k8s-resource-monitor-lease"
REJECTED_FIX = "renew the credentials: an expired token, a deleted ServiceAccount, or the kubeconfig's user"
UNREACHABLE_FIX = "check that the API server answers from here (its address, network, NetworkPolicies)"


@dataclass(frozen=True)
class Permission:
    """One API call the collector makes, and where its RBAC rule belongs."""

    verb: str
    resource: Resource
    namespace: str | None = None  # None: cluster-wide
    name: str | None = None  # a rule limited by resourceNames

    @property
    def subject(self) -> str:
        """The permission as people read it: verb, resource, name and scope."""
        plural = f"{self.resource.plural}.{self.resource.group}" if self.resource.group else self.resource.plural
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {plural}{named} ({f'namespace {self.namespace}' if self.namespace else 'all namespaces'})"

    def rule(self) -> str:
        """The rule to add, in common/base/rbac.yaml's terms."""
        group = self.resource.group or '""'
        names = f", resourceNames: [{self.name}]" if self.name else ""
        rule = f"{{apiGroups: [{group}], resources: [{self.resource.plural}]{names}, verbs: [{self.verb}]}}"
        if self.resource.plural == "leases":
            return f"add to Role {LEASE_ROLE} in namespace {self.namespace} (common/base/rbac.yaml): {rule}"
        where = f", or to a Role in namespace {self.namespace}" if self.namespace else ""
        return f"add to ClusterRole {CLUSTER_ROLE} (common/base/rbac.yaml){where}: {rule}"


def needed_permissions(settings: Settings, lease_namespace: str | None) -> list[Permission]:
    """Every verb and resource a collection uses: the lists (per NAMESPACES_INCLUDE namespace, or
    cluster-wide), nodes, and the collector Lease when it runs in a pod."""
    from shared.sources.hpas import HORIZONTAL_POD_AUTOSCALERS
    from shared.sources.kube import JOBS, LEASES, NODES, PODS, REPLICASETS

    scopes: tuple[str | None, ...] = settings.namespaces_include or (None,)
    needed = [Permission("list", resource, scope) for scope in scopes
              for resource in (PODS, REPLICASETS, JOBS, HORIZONTAL_POD_AUTOSCALERS)]
    needed.append(Permission("list", NODES))
    if lease_namespace:
        needed += [Permission("create", LEASES, lease_namespace),
                   Permission("get", LEASES, lease_namespace, settings.lease_name),
                   Permission("update", LEASES, lease_namespace, settings.lease_name)]
    return needed


REVIEWS_REFUSED = Finding(
    "create selfsubjectaccessreviews", PROBLEM,
    "these credentials may not ask what they may do (health needs it too); the reads were tried instead",
    f"add to ClusterRole {CLUSTER_ROLE} (common/base/rbac.yaml): "
    f"{{apiGroups: [authorization.k8s.io], resources: [selfsubjectaccessreviews], verbs: [create]}}")



def permissions_section(settings: Settings, timeout_seconds: float) -> Section:
    """Ask the API server, with a SelfSubjectAccessReview per call, whether these credentials may make it."""
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.domain.collection import lease_namespace
    from shared.sources.kube import KubeClient, KubeError
    from shared.sources.kube_credentials import KubeCredentialsError, load_credentials

    quick = settings.model_copy(update={"kube_timeout_seconds": min(settings.kube_timeout_seconds, timeout_seconds),
                                        "kube_max_retries": 0})
    namespace = lease_namespace(settings)
    needed = needed_permissions(settings, namespace)
    asked_as = ("the pod's service account" if settings.in_cluster else
                f"the user of kubeconfig {settings.kubeconfig or '~/.kube/config'} (context "
                f"{settings.kube_context or 'current'}), not necessarily the monitor's service account")
    data: dict[str, Any] = {"asked_as": asked_as, "lease_namespace": namespace}
    cannot_ask = "the API server cannot be asked"
    try:
        credentials = load_credentials(quick)
    except KubeCredentialsError as exc:  # raised by loading alone: there are no credentials to ask with
        finding = Finding("Kubernetes API", UNAVAILABLE, redact(str(exc)),
                          "set KUBECONFIG / KUBE_CONTEXT, or run in a pod with a service account")
        return Section(UNAVAILABLE, cannot_ask, [finding], data)
    data["server"] = credentials.host
    try:
        with KubeClient(credentials, quick, Deadline(timeout_seconds)) as kube:
            findings = _ask_each(kube, needed)
    except BudgetExceeded:
        why = f"the API server did not answer every question within {timeout_seconds:g}s (--timeout)"
        return Section(UNAVAILABLE, cannot_ask, [Finding("Kubernetes API", UNAVAILABLE, why, UNREACHABLE_FIX)], data)
    except KubeError as exc:
        fix = REJECTED_FIX if exc.status == HTTPStatus.UNAUTHORIZED else UNREACHABLE_FIX
        return Section(UNAVAILABLE, cannot_ask, [Finding("Kubernetes API", UNAVAILABLE, redact(str(exc)), fix)], data)
    if namespace is None:
        findings.append(Finding("leases", OK, "not checked: not running in a pod (no POD_NAMESPACE), so a collection "
                                              "here uses the file lock only"))
    subjects = {permission.subject for permission in needed}
    allowed = sum(1 for f in findings if f.subject in subjects and f.status == OK)
    summary = f"{allowed} of {len(needed)} API calls allowed, asked as {asked_as}"
    return Section(OK if all(f.status == OK for f in findings) else PROBLEM, summary, findings, data)


def _ask_each(kube: KubeClient, needed: list[Permission]) -> list[Finding]:
    """A finding per permission: reviewed while reviews are answered, then tried (reads) or left unchecked."""
    from shared.sources.access import ReviewsRefused

    findings = []
    reviews = True
    for permission in needed:
        if reviews:
            try:
                findings.append(_reviewed(kube, permission))
                continue
            except ReviewsRefused:
                reviews = False
                findings.append(REVIEWS_REFUSED)
        findings.append(_tried(kube, permission))
    return findings


def _reviewed(kube: KubeClient, permission: Permission) -> Finding:
    """Allowed or not, as a SelfSubjectAccessReview answers: nothing is read or changed."""
    from shared.sources.access import can_i

    access = can_i(kube, permission.verb, permission.resource, permission.namespace, permission.name)
    if access.allowed:
        return Finding(permission.subject, OK, "allowed")
    return Finding(permission.subject, PROBLEM, f"denied ({access.reason})", permission.rule())


def _tried(kube: KubeClient, permission: Permission) -> Finding:
    """Where reviews are refused: a read is tried (one item); a write is not, it would change the cluster."""
    from shared.sources.access import READ_VERBS, try_read

    if permission.verb not in READ_VERBS:
        return Finding(permission.subject, UNAVAILABLE, "not checked: trying it would change the cluster",
                       permission.rule())
    access = try_read(kube, permission.verb, permission.resource, permission.namespace, permission.name)
    if access.allowed:
        return Finding(permission.subject, OK, "allowed (tried)")
    return Finding(permission.subject, PROBLEM, f"denied: {access.reason}", permission.rule())
