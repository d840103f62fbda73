"""HorizontalPodAutoscalers (autoscaling/v2), read into small records: what each scales, on what, within which bounds.

A workload scaled on CPU or memory utilisation scales on its pods' usage divided by their requests:
changing that request changes when it scales, so the report must know (shared/domain/rightsizing.py).
Only Resource and ContainerResource metrics with a Utilization target depend on requests; the
others (AverageValue, Pods, Object, External) are kept to be shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from shared.sources.kube import KubeClient, Resource
from shared.sources.kube_objects import HorizontalPodAutoscaler, MetricSpec, MetricTarget

HORIZONTAL_POD_AUTOSCALERS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
DEFAULT_CPU_UTILIZATION = 80  # the API server's default target when an HPA names no metric
UTILIZATION = "Utilization"


class HpaMetric(msgspec.Struct, frozen=True, gc=False):
    """One metric an HPA scales on. `resource` is cpu or memory for Resource and ContainerResource metrics
    (`container` names the container for the latter); `target` is the utilisation percent or the value."""

    type: str  # Resource, ContainerResource, Pods, Object or External
    resource: str | None = None
    container: str | None = None
    target_type: str | None = None  # Utilization, AverageValue or Value
    target_utilization_percent: int | None = None
    target_value: str | None = None

    def scales_on_request(self, resource: str, container: str) -> bool:
        """Whether this metric is `resource` utilisation over `container`'s request (all of a pod's
        containers' requests count for a Resource metric, only its own for a ContainerResource one)."""
        if self.resource != resource or self.target_type != UTILIZATION:
            return False
        return self.type == "Resource" or (self.type == "ContainerResource" and self.container == container)

    def describe(self) -> str:
        """`CPU utilisation 70%`, `memory of container app at 80%`, `External metric`."""
        if self.resource is None:
            return f"{self.type} metric"
        what = "CPU" if self.resource == "cpu" else self.resource
        if self.type == "ContainerResource":
            what += f" of container {self.container}"
        if self.target_type == UTILIZATION:
            return f"{what} utilisation {self.target_utilization_percent}%"
        return f"{what} {self.target_type or 'target'} {self.target_value}"


class HpaRecord(msgspec.Struct, gc=False):
    """An HPA as a run saw it: its target workload, bounds, replicas and metrics."""

    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int | None
    desired_replicas: int | None
    metrics: list[HpaMetric]


def parse_hpa(hpa: HorizontalPodAutoscaler) -> HpaRecord:
    """Keep what the report needs of one HPA."""
    spec = hpa.spec
    status = hpa.status
    target = spec.scaleTargetRef if spec else None
    metrics = [_metric(m) for m in spec.metrics] if spec and spec.metrics else [
        HpaMetric("Resource", "cpu", None, UTILIZATION, DEFAULT_CPU_UTILIZATION)]
    return HpaRecord(
        namespace=hpa.metadata.namespace, name=hpa.metadata.name,
        target_kind=target.kind if target else "", target_name=target.name if target else "",
        min_replicas=spec.minReplicas if spec and spec.minReplicas is not None else 1,
        max_replicas=spec.maxReplicas if spec else 0,
        current_replicas=status.currentReplicas if status else None,
        desired_replicas=status.desiredReplicas if status else None,
        metrics=metrics,
    )


def _metric(metric: MetricSpec) -> HpaMetric:
    source = metric.resource if metric.type == "Resource" else (
        metric.containerResource if metric.type == "ContainerResource" else None)
    if source is None:
        return HpaMetric(metric.type)
    target = source.target or MetricTarget()
    container = metric.containerResource.container if metric.containerResource else None
    value = target.averageValue if target.averageValue is not None else target.value
    return HpaMetric(metric.type, source.name, container, target.type or None, target.averageUtilization,
                     None if value is None else str(value))


def read_hpas(client: KubeClient, scopes: Iterable[str | None], excluded: set[str], page_size: int) -> list[HpaRecord]:
    """Every HPA of the scopes (None: every namespace), outside the excluded namespaces."""
    hpas = {}
    for scope in scopes:
        for items in client.list_pages(HORIZONTAL_POD_AUTOSCALERS, HorizontalPodAutoscaler, scope, page_size):
            if items is None:  # the list restarted: what it holds is listed again
                continue
            for item in items:
                if item.metadata.namespace not in excluded:
                    hpas[(item.metadata.namespace, item.metadata.name)] = parse_hpa(item)
    return list(hpas.values())
