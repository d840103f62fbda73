"""Something to apply: one YAML strategic-merge patch per workload, setting the recommended requests and limits.

Each patch names the workload (apiVersion, kind, metadata name and namespace) and only the resources
whose recommendation changes them: a container whose every value is `keep` (within
REPORT_MIN_CHANGE_RATIO, held for an HPA, ignored) or `unknown` (not enough data) is left out, and a
workload with none to change gets no patch. Containers merge by name (the strategic merge key), so
other containers and fields are untouched; a CPU limit the policy removes is written as null, which
deletes it. Pod templates are under spec.template (Deployment, StatefulSet, DaemonSet, ReplicaSet)
or spec.jobTemplate.spec.template (CronJob); native sidecars under initContainers. Jobs and bare
pods get none (their pod templates cannot be changed: change what creates them), nor do workloads
that are gone. Apply one with
`kubectl patch deployment api -n shop --type strategic --patch-file api.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.formats import GiB, KiB, MiB, format_bytes, format_millicores

if TYPE_CHECKING:
    from shared.domain.report.explained import ExplainedContainer
    from shared.domain.rightsizing import Advice

API_VERSIONS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
                "CronJob": "batch/v1"}
_TEMPLATE_PATHS = {"CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
_DEFAULT_TEMPLATE_PATH = ("spec", "template", "spec")


@dataclass(frozen=True)
class WorkloadPatch:
    """One workload's patch: `text` is the YAML document, `changes` says what it changes in words."""

    namespace: str
    kind: str
    name: str
    text: str
    changes: tuple[str, ...]  # "app: CPU request 500m -> 120m", one per value changed
    savings_per_month: float
    low_confidence: bool  # some container's recommendation rests on little history

    @property
    def key(self) -> str:
        """The workload as `namespace/Kind/name`, as the report's workload totals are keyed."""
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True)
class SkippedWorkload:
    """A workload with changes that gets no patch, and why."""

    workload: str
    reason: str


def cpu_quantity(millicores: int) -> str:
    """Millicores as Kubernetes writes CPU: whole cores as `2`, else `250m`."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(value: int) -> str:
    """Bytes as an exact binary quantity: `1Gi`, `230Mi`, `900Ki`, else plain bytes."""
    for unit, size in (("Gi", GiB), ("Mi", MiB), ("Ki", KiB)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def workload_patches(containers: Iterable[ExplainedContainer]) -> tuple[list[WorkloadPatch], list[SkippedWorkload]]:
    """A patch per workload with something to change, in the order of `containers`; and the workloads
    with changes that cannot be patched (a Job, a bare pod, gone), with why."""
    by_workload: dict[tuple[str, str, str], list[ExplainedContainer]] = {}
    for c in containers:
        if c.recommendation.changes:
            by_workload.setdefault((c.namespace, c.workload_kind, c.workload_name), []).append(c)
    patches, skipped = [], []
    for (namespace, kind, name), changed in by_workload.items():
        workload = f"{namespace}/{kind}/{name}"
        if kind not in API_VERSIONS:
            skipped.append(SkippedWorkload(workload, f"a {kind}'s pod template cannot be changed: change what "
                                                     f"creates it"))
        elif any(c.gone for c in changed):
            skipped.append(SkippedWorkload(workload, "gone: not seen by the newest collection"))
        else:
            patches.append(_patch(namespace, kind, name, changed))
    return patches, skipped


def _patch(namespace: str, kind: str, name: str, containers: list[ExplainedContainer]) -> WorkloadPatch:
    lines = [f"apiVersion: {API_VERSIONS[kind]}", f"kind: {kind}", "metadata:", f"  name: {name}",
             f"  namespace: {namespace}"]
    indent = ""
    for key in _TEMPLATE_PATHS.get(kind, _DEFAULT_TEMPLATE_PATH):
        lines.append(f"{indent}{key}:")
        indent += "  "
    changes: list[str] = []
    for section, members in (("initContainers", [c for c in containers if c.sidecar]),
                             ("containers", [c for c in containers if not c.sidecar])):
        if not members:
            continue
        lines.append(f"{indent}{section}:")
        for c in members:
            lines += [f"{indent}- name: {c.container}", f"{indent}  resources:"]
            r = c.recommendation
            for group, values in (("requests", (("cpu", r.cpu_request), ("memory", r.memory_request))),
                                  ("limits", (("cpu", r.cpu_limit), ("memory", r.memory_limit)))):
                changed = [(resource, advice) for resource, advice in values if advice.changes]
                if changed:
                    lines.append(f"{indent}    {group}:")
                for resource, advice in changed:
                    lines.append(f"{indent}      {resource}: {_quantity(resource, advice.recommended)}")
                    changes.append(f"{c.container}: {_describe(resource, group, advice)}")
    savings = sum(c.costs.savings_per_month for c in containers)
    return WorkloadPatch(namespace, kind, name, "\n".join(lines) + "\n", tuple(changes), savings,
                         any(c.recommendation.low_confidence for c in containers))


def _quantity(resource: str, value: int | None) -> str:
    if value is None:
        return "null"  # deletes the key: a strategic merge patch's way to remove a limit
    return f'"{cpu_quantity(value) if resource == "cpu" else memory_quantity(value)}"'


def _describe(resource: str, group: str, advice: Advice) -> str:
    fmt = format_millicores if resource == "cpu" else format_bytes
    what = f"{'CPU' if resource == 'cpu' else 'memory'} {group.removesuffix('s')}"
    before = fmt(advice.current) if advice.current is not None else "none"
    after = fmt(advice.recommended) if advice.recommended is not None else "none"
    return f"{what} {before} -> {after} ({advice.action})"


def patches_text(patches: list[WorkloadPatch], skipped: list[SkippedWorkload], currency: str) -> str:
    """The patches as one YAML stream, each document led by comments saying what it changes; the
    workloads that get none are named at the top."""
    header = ["# k8s-resource-monitor: one strategic-merge patch per workload; apply one with",
              "# kubectl patch <kind> <name> -n <namespace> --type strategic --patch-file <file>"]
    header += [f"# no patch for {s.workload}: {s.reason}" for s in skipped]
    if not patches:
        header.append("# nothing to change: every recommendation is keep (or not enough data)")
    documents = []
    for patch in patches:
        notes = [f"# {patch.key}: saves {patch.savings_per_month:.2f} {currency}/month",
                 *(f"#   {change}" for change in patch.changes)]
        if patch.low_confidence:
            notes.append("#   low confidence: little history behind some of these values (REPORT_MIN_CONFIDENCE)")
        documents.append("\n".join(notes) + "\n" + patch.text)
    return "\n".join(header) + "\n" + "".join(f"---\n{document}" for document in documents)
