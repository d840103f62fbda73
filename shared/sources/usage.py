"""What each container really used over the collection window, from cluster-wide PromQL queries.

The number of queries is fixed (one per figure below), whatever the cluster size: each query covers
every container and is grouped by namespace, pod and container. cAdvisor's pod-level series
(`container=""`) and pause containers (`container="POD"`) are excluded, or usage counts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.core.settings import Settings
    from shared.sources.prometheus import PrometheusClient

ContainerKey = tuple[str, str, str]  # namespace, pod, container


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """One cluster-wide query: the figure it yields and its PromQL with a `{selector}` slot."""

    figure: str
    template: str


@dataclass(slots=True)
class ContainerUsage:
    """Usage of one container over the window; None where Prometheus had no series."""

    cpu_avg_millicores: float | None = None
    cpu_max_millicores: float | None = None
    memory_avg_bytes: float | None = None
    memory_max_bytes: float | None = None
    cpu_throttled_ratio: float | None = None
    oom_events: float | None = None


def usage_queries(settings: Settings) -> list[UsageQuery]:
    """The fixed list of queries for one run, built from the configured metric and label names."""
    by = f"{settings.label_namespace},{settings.label_pod},{settings.label_container}"
    window = f"{settings.collect_interval_seconds}s"
    rate = f"{settings.prometheus_rate_seconds}s"
    step = f"{settings.prometheus_step_seconds}s"
    cpu, mem = settings.metric_cpu_usage, settings.metric_memory_working_set
    throttled, periods = settings.metric_cpu_throttled_periods, settings.metric_cpu_periods
    return [
        UsageQuery("cpu_avg", f"sum by ({by}) (rate({cpu}{{selector}}[{window}]))"),
        UsageQuery("cpu_max", f"max by ({by}) (max_over_time(rate({cpu}{{selector}}[{rate}])[{window}:{step}]))"),
        UsageQuery("memory_avg", f"max by ({by}) (avg_over_time({mem}{{selector}}[{window}]))"),
        UsageQuery("memory_max", f"max by ({by}) (max_over_time({mem}{{selector}}[{window}]))"),
        UsageQuery(
            "cpu_throttled",
            f"sum by ({by}) (increase({throttled}{{selector}}[{window}]))"
            f" / sum by ({by}) (increase({periods}{{selector}}[{window}]))",
        ),
        UsageQuery("oom_events", f"sum by ({by}) (increase({settings.metric_oom_events}{{selector}}[{window}]))"),
    ]


def series_selector(settings: Settings, namespaces: tuple[str, ...] | None) -> str:
    """Label matchers that drop pod-level and pause series and keep the wanted namespaces.

    `namespaces=None` means the configured scope: `NAMESPACES_INCLUDE` when set, else everything.
    """
    container = settings.label_container
    matchers = [f'{container}!=""', f'{container}!="POD"']
    wanted = namespaces if namespaces is not None else settings.namespaces_include
    if len(wanted) == 1:
        matchers.append(f'{settings.label_namespace}="{wanted[0]}"')
    elif wanted:
        matchers.append(f'{settings.label_namespace}=~"{"|".join(wanted)}"')
    return "{" + ",".join(matchers) + "}"


def render(query: UsageQuery, selector: str) -> str:
    """The PromQL text of `query` with its selector filled in."""
    return query.template.replace("{selector}", selector)


_SCALE = {"cpu_avg": 1000.0, "cpu_max": 1000.0}  # cores -> millicores
_FIELD = {
    "cpu_avg": "cpu_avg_millicores",
    "cpu_max": "cpu_max_millicores",
    "memory_avg": "memory_avg_bytes",
    "memory_max": "memory_max_bytes",
    "cpu_throttled": "cpu_throttled_ratio",
    "oom_events": "oom_events",
}


@dataclass
class UsageResult:
    """Usage per container plus the reasons any query failed (the run is then `partial`)."""

    by_container: dict[ContainerKey, ContainerUsage]
    errors: list[str]
    budget_exceeded: bool = False


def collect_usage(
    client: PrometheusClient,
    settings: Settings,
    at: float,
    namespaces: Callable[[], tuple[str, ...]],
    scope: tuple[str, ...] | None = None,
) -> UsageResult:
    """Run every usage query at time `at` and merge the answers per container.

    `scope` is the run's namespace filter (None: the configured one). `namespaces()` gives those the
    run found pods in: a query whose answer is too large is asked again once per namespace. An
    unreachable Prometheus stops at the first failure, not once per query.
    """
    from shared.sources.prometheus import PrometheusError, PrometheusUnavailable, QueryTooLarge

    labels = (settings.label_namespace, settings.label_pod, settings.label_container)
    result = UsageResult({}, [])
    for query in usage_queries(settings):
        try:
            try:
                samples = client.query_vector(render(query, series_selector(settings, scope)), at)
            except QueryTooLarge:
                samples = [
                    sample
                    for namespace in namespaces()
                    for sample in client.query_vector(render(query, series_selector(settings, (namespace,))), at)
                ]
        except PrometheusUnavailable as exc:
            result.errors.append(str(exc))
            return result
        except PrometheusError as exc:
            result.errors.append(f"{query.figure}: {exc}")
            continue
        _merge(result.by_container, query.figure, samples, labels)
    return result


def _merge(
    usage: dict[ContainerKey, ContainerUsage], figure: str, samples: list, labels: tuple[str, str, str]
) -> None:
    field, scale = _FIELD[figure], _SCALE.get(figure, 1.0)
    for metric, value in samples:
        if value != value:  # NaN: the 0/0 throttling ratio of a container that never ran
            continue
        key = (metric.get(labels[0], ""), metric.get(labels[1], ""), metric.get(labels[2], ""))
        setattr(usage.setdefault(key, ContainerUsage()), field, value * scale)
