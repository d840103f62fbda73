"""The cAdvisor series a kubelet exports for the scenario's running pods.

Besides one series per container, cAdvisor exports the pod's own cgroup (`container=""`, the sum of
its containers) and the pause container (`container="POD"`). Both are here, as in a real cluster,
so a query that forgets to exclude them counts usage twice, exactly as it would in production.
CFS throttling series exist only for containers with a CPU limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.simulator.scenario import Scenario, SimContainer, SimPod
from shared.simulator.timeseries import Signal, series_key, signal

_PAUSE = SimContainer("POD", "registry.k8s.io/pause:3.9", None, None, None, None,
                      cpu_usage_millicores=0.2, memory_working_set_bytes=786_432.0)

Sampler = Callable[[float], "float | None"]


@dataclass(frozen=True, slots=True)
class MetricNames:
    """Metric and label names; the defaults are cAdvisor's (and the monitor's configuration's)."""

    cpu_usage: str = "container_cpu_usage_seconds_total"
    memory_working_set: str = "container_memory_working_set_bytes"
    cpu_throttled_periods: str = "container_cpu_cfs_throttled_periods_total"
    cpu_periods: str = "container_cpu_cfs_periods_total"
    oom_events: str = "container_oom_events_total"
    label_namespace: str = "namespace"
    label_pod: str = "pod"
    label_container: str = "container"

    def counters(self) -> tuple[str, ...]:
        return (self.cpu_usage, self.cpu_throttled_periods, self.cpu_periods, self.oom_events)


@dataclass(frozen=True, slots=True)
class Series:
    """One exported series: its labels (without __name__) and its value at a time."""

    metric: str
    labels: dict[str, str]
    sample: Sampler
    key: int  # stable identity, e.g. to drop a fixed share of series


def cadvisor_series(scenario: Scenario, names: MetricNames = MetricNames()) -> list[Series]:
    """Every series of every running pod: containers, the pod cgroup and the pause container."""
    series: list[Series] = []
    for pod in scenario.running_pods():
        signals = [signal(scenario, pod, container) for container in pod.containers]
        for container, behaviour in zip(pod.containers, signals):
            series += _container_series(scenario, pod, container.name, behaviour, names)
        pause = signal(scenario, pod, _PAUSE)
        series += _container_series(scenario, pod, "POD", pause, names, cgroup_only=True)
        members = signals + [pause]
        labels = _labels(names, pod, "")
        key = series_key(scenario.seed, pod.namespace, pod.name, "")
        series.append(Series(names.cpu_usage, labels, _pod_total(members, Signal.cpu_seconds_total_at), key))
        series.append(Series(names.memory_working_set, labels, _pod_total(members, Signal.memory_bytes_at), key))
    return series


def with_copies(series: list[Series], copies: tuple[dict[str, str], ...]) -> list[Series]:
    """Each series once per label set in `copies`, with those labels added: one cluster's data held under
    two `cluster` values in a central store, or cAdvisor scraped by two jobs. `({},)` leaves it as it is."""
    return [Series(one.metric, {**one.labels, **extra}, one.sample, one.key) for extra in copies for one in series]


def _pod_total(members: list[Signal], value_at: Callable[[Signal, float], float]) -> Sampler:
    """The pod cgroup's series: the sum of its containers' (and the pause container's) values."""
    return lambda t: sum(value_at(member, t) for member in members)


def _labels(names: MetricNames, pod: SimPod, container: str) -> dict[str, str]:
    return {names.label_namespace: pod.namespace, names.label_pod: pod.name, names.label_container: container}


def _container_series(scenario: Scenario, pod: SimPod, container: str, behaviour: Signal, names: MetricNames,
                      cgroup_only: bool = False) -> list[Series]:
    labels = _labels(names, pod, container)
    key = series_key(scenario.seed, pod.namespace, pod.name, container)
    series = [
        Series(names.cpu_usage, labels, behaviour.cpu_seconds_total_at, key),
        Series(names.memory_working_set, labels, behaviour.memory_bytes_at, key),
    ]
    if cgroup_only:
        return series
    series.append(Series(names.oom_events, labels, behaviour.oom_events_total_at, key))
    if behaviour.has_cpu_limit:
        series.append(Series(names.cpu_periods, labels, behaviour.cfs_periods_total_at, key))
        series.append(Series(names.cpu_throttled_periods, labels, behaviour.cfs_throttled_periods_total_at, key))
    return series
