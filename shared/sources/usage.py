"""What each container really used over the collection window, from cluster-wide PromQL queries.

The number of queries is fixed (one per figure below, plus one that looks for duplicated series),
whatever the cluster size: each query covers every container and is grouped by namespace, pod and
container. cAdvisor's pod-level series (`container=""`) and pause containers (`container="POD"`)
are excluded, or usage counts twice. Every selector carries this setup's scope (selectors.py).

A container can also be held more than once: one series per cluster in a central store, one per
scrape job when cAdvisor is scraped twice. Figures taken with `max` are safe from that; the ones
that add series (a restarted container's old and new series) add them per copy first and then keep
one copy, `max by (namespace,pod,container) (sum without (id,name,image) (...))`, so nothing is
ever counted twice whatever labels tell the copies apart. The duplicate query (asked first, alone:
a Prometheus that cannot be reached or refuses us stops the run there) says which labels those are.
The six figures are then asked in parallel, at most PROMETHEUS_MAX_CONCURRENCY at a time; each
request's timeout is bounded by what is left of the run's deadline (the client's).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.sources.duplicate_series import duplicates_query, find_duplicates
from shared.sources.selectors import CONTAINER_INSTANCE_LABELS, container_matchers, selector

if TYPE_CHECKING:
    from shared.core.matchers import LabelMatcher
    from shared.core.settings import Settings
    from shared.sources.prometheus import ContainerSample, PrometheusClient, Sample

ContainerKey = tuple[str, str, str]  # namespace, pod, container


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """One cluster-wide query: the figure it yields and how to write it for given label matchers."""

    figure: str
    build: Callable[[tuple[LabelMatcher, ...]], str]

    def render(self, matchers: tuple[LabelMatcher, ...]) -> str:
        """The PromQL text of this query with `matchers` in each of its metric selectors."""
        return self.build(matchers)


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
    """The fixed list of figure queries for one run, built from the configured metric and label names."""
    by = f"{settings.label_namespace},{settings.label_pod},{settings.label_container}"
    window = f"{settings.collect_interval_seconds}s"
    rate = f"{settings.prometheus_rate_seconds}s"
    step = f"{settings.prometheus_step_seconds}s"
    instance = ", ".join(CONTAINER_INSTANCE_LABELS)

    def one_copy(expression: str) -> str:
        """Add a container's series per copy (restarts), then keep one copy (duplicates are never added)."""
        return f"max by ({by}) (sum without ({instance}) ({expression}))"

    cpu, mem = settings.metric_cpu_usage, settings.metric_memory_working_set
    throttled, periods = settings.metric_cpu_throttled_periods, settings.metric_cpu_periods
    oom = settings.metric_oom_events
    return [
        UsageQuery("cpu_avg", lambda m: one_copy(f"rate({selector(cpu, m)}[{window}])")),
        UsageQuery("cpu_max", lambda m: f"max by ({by}) (max_over_time(rate({selector(cpu, m)}[{rate}])"
                                        f"[{window}:{step}]))"),
        UsageQuery("memory_avg", lambda m: f"max by ({by}) (avg_over_time({selector(mem, m)}[{window}]))"),
        UsageQuery("memory_max", lambda m: f"max by ({by}) (max_over_time({selector(mem, m)}[{window}]))"),
        UsageQuery("cpu_throttled", lambda m: f"{one_copy(f'increase({selector(throttled, m)}[{window}])')}"
                                              f" / {one_copy(f'increase({selector(periods, m)}[{window}])')}"),
        UsageQuery("oom_events", lambda m: one_copy(f"increase({selector(oom, m)}[{window}])")),
    ]


def duplicates_usage_query(settings: Settings) -> UsageQuery:
    """The query that finds containers held more than once (duplicate_series.py)."""
    return UsageQuery("duplicates", lambda m: duplicates_query(settings, selector(settings.metric_cpu_usage, m)))


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
    """Usage per container, the reasons any query failed (the run is then `partial`), and warnings
    about the data that do not make it partial (duplicated series)."""

    by_container: dict[ContainerKey, ContainerUsage]
    errors: list[str]
    budget_exceeded: bool = False
    warnings: list[str] = field(default_factory=list)


def collect_usage(
    client: PrometheusClient,
    settings: Settings,
    at: float,
    namespaces: Callable[[], tuple[str, ...]],
    scope: tuple[str, ...] | None = None,
) -> UsageResult:
    """Run the duplicate check, then every usage query at time `at`, and merge the answers per container.

    `scope` is the run's namespace filter (None: the configured one). `namespaces()` gives those the
    run found pods in: a query whose answer is too large is asked again once per namespace. A
    Prometheus that cannot be reached, or refuses the credentials, stops at the first failure, not
    once per query. BudgetExceeded from the client propagates.
    """
    from shared.sources.prometheus import PrometheusError, PrometheusRefused, PrometheusUnavailable, QueryTooLarge

    labels = (settings.label_namespace, settings.label_pod, settings.label_container)
    result = UsageResult({}, [])
    merging = threading.Lock()

    def ask(query: UsageQuery) -> list[Sample]:
        try:
            return client.query_vector(query.render(container_matchers(settings, scope)), at)
        except QueryTooLarge:
            return [sample for namespace in namespaces()
                    for sample in client.query_vector(query.render(container_matchers(settings, (namespace,))), at)]

    def ask_and_merge(query: UsageQuery) -> None:
        """One figure, merged as its answer is read: no answer waits in memory for the others."""
        def merge(samples: Iterable[ContainerSample]) -> None:
            with merging:
                _merge(result.by_container, query.figure, samples)

        try:
            client.query_by_container(query.render(container_matchers(settings, scope)), at, labels, merge)
        except QueryTooLarge:  # asked per namespace; merged once every namespace answered (all or nothing)
            split: list[ContainerSample] = []
            for namespace in namespaces():
                client.query_by_container(query.render(container_matchers(settings, (namespace,))), at, labels,
                                          split.extend)
            merge(split)

    try:
        warning = find_duplicates(ask(duplicates_usage_query(settings)), settings).warning(settings)
    except (PrometheusUnavailable, PrometheusRefused) as exc:
        result.errors.append(str(exc))
        return result
    except PrometheusError as exc:
        warning = f"could not look for duplicated series: {exc}"
    if warning:
        result.warnings.append(warning)
    with ThreadPoolExecutor(settings.prometheus_max_concurrency, thread_name_prefix="prometheus-query") as pool:
        futures: list[tuple[UsageQuery, Future[None]]] = [
            (query, pool.submit(contextvars.copy_context().run, ask_and_merge, query))
            for query in usage_queries(settings)]
        try:
            for query, future in futures:
                try:
                    future.result()
                except (PrometheusUnavailable, PrometheusRefused) as exc:
                    result.errors.append(str(exc))
                    return result
                except PrometheusError as exc:
                    result.errors.append(f"{query.figure}: {exc}")
        finally:
            for _, future in futures:  # after a stop: queries not yet sent are not sent
                future.cancel()
    return result


def _merge(usage: dict[ContainerKey, ContainerUsage], figure: str, samples: Iterable[ContainerSample]) -> None:
    field_name, scale = _FIELD[figure], _SCALE.get(figure, 1.0)
    for key, value in samples:
        if value != value:  # NaN: the 0/0 throttling ratio of a container that never ran
            continue
        setattr(usage.setdefault(key, ContainerUsage()), field_name, value * scale)
