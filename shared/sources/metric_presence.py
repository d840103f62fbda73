"""Whether Prometheus has this setup's series of the metrics the collector queries, asked by name: no sample is read.

A metric missing leaves the usage it feeds empty (cAdvisor not scraped, relabelled away, named
otherwise in this setup, or a cluster label or selector that matches nothing): health and diagnose
both ask this way, with the same scope as the queries (PROMETHEUS_CLUSTER_LABEL, PROMETHEUS_SELECTOR),
over the last hour. CPU usage and working set are indispensable; the CFS and OOM-event metrics are
optional: older kubelets and many relabelling setups drop them, and only their figures stay empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.sources.selectors import scope_matchers, selector

if TYPE_CHECKING:
    from shared.core.settings import Settings
    from shared.sources.prometheus import PrometheusClient

REQUIRED_METRICS = ("METRIC_CPU_USAGE", "METRIC_MEMORY_WORKING_SET")
RECENT_SECONDS = 3600.0  # series seen this recently count as present


@dataclass(frozen=True)
class MetricPresence:
    """The asked metrics (by the variable that names each) with no series in this setup's scope."""

    missing: dict[str, str]  # {"METRIC_OOM_EVENTS": "container_oom_events_total", ...}

    @property
    def missing_required(self) -> dict[str, str]:
        """Missing metrics without which the collector stores no usage."""
        return {variable: name for variable, name in self.missing.items() if variable in REQUIRED_METRICS}

    @property
    def missing_optional(self) -> dict[str, str]:
        """Missing metrics whose figures (throttling, OOM events) stay empty; the rest is collected."""
        return {variable: name for variable, name in self.missing.items() if variable not in REQUIRED_METRICS}


def queried_metrics(settings: Settings) -> dict[str, str]:
    """The metric names the usage queries use, by the variable that sets each: {"METRIC_CPU_USAGE": name, ...}."""
    return {field.upper(): value for field, value in settings if field.startswith("metric_")}


def scope_text(settings: Settings) -> str:
    """This setup's matchers as PromQL (`{cluster="a",job="kubelet"}`), "" when there are none: what was asked."""
    return selector("", scope_matchers(settings))


def metric_presence(prometheus: PrometheusClient, settings: Settings) -> MetricPresence:
    """Which queried metrics have no series in this setup's scope; raises the client's PrometheusError when
    it cannot say."""
    wanted = queried_metrics(settings)
    scope = scope_matchers(settings)
    found = prometheus.metric_names([selector(name, scope) for name in dict.fromkeys(wanted.values())],
                                    since_seconds=RECENT_SECONDS)
    return MetricPresence({variable: name for variable, name in wanted.items() if name not in found})
