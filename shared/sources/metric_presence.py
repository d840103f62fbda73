"""Whether Prometheus has the metrics the collector queries, asked by name: no series is read.

A metric missing by name leaves the usage it feeds empty (cAdvisor not scraped, relabelled away,
or named otherwise in this setup): health and diagnose both ask this way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.core.settings import Settings
    from shared.sources.prometheus import PrometheusClient


@dataclass(frozen=True)
class MetricPresence:
    """The asked metric names Prometheus has no series for, and how many metric names it knows at all."""

    missing: tuple[str, ...]  # sorted
    known_count: int


def queried_metrics(settings: Settings) -> dict[str, str]:
    """The metric names the usage queries use, by the variable that sets each: {"METRIC_CPU_USAGE": name, ...}."""
    return {field.upper(): value for field, value in settings if field.startswith("metric_")}


def metric_presence(prometheus: PrometheusClient, names: Iterable[str]) -> MetricPresence:
    """Which of `names` Prometheus knows no series of; raises the client's PrometheusError when it cannot say."""
    known = prometheus.metric_names()
    return MetricPresence(tuple(sorted(set(names) - known)), len(known))
