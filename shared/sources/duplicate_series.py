"""Containers that Prometheus holds more than once, and the warning that says which labels tell the copies apart.

A central Prometheus holds every cluster (`cluster` label); cAdvisor is often scraped twice (the
kubelet job and a cAdvisor DaemonSet, or two ServiceMonitors). The usage queries never add such
copies (see usage.py); this one query finds them so the run can say which setting removes them.
It asks for one series per copy of each duplicated container, its labels without those of one run
of the container (a restart is not a copy), and only for containers that have several.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.sources.selectors import CONTAINER_INSTANCE_LABELS

if TYPE_CHECKING:
    from shared.core.settings import Settings
    from shared.sources.prometheus import Sample

_EXAMPLES = 3


def duplicates_query(settings: Settings, selector: str) -> str:
    """One series per copy of every container with more than one: `selector` is the CPU counter's."""
    key = f"{settings.label_namespace},{settings.label_pod},{settings.label_container}"
    copies = f"count without ({', '.join(CONTAINER_INSTANCE_LABELS)}) ({selector})"
    return f"{copies} and on ({key}) (count by ({key}) ({copies}) > 1)"


@dataclass(frozen=True)
class Duplicates:
    """Containers found more than once, and the labels whose values differ between the copies."""

    containers: int
    differing: dict[str, int]  # label -> how many duplicated containers differ in it
    examples: tuple[str, ...]  # `ns/pod/container: job=a|b`, a few

    def warning(self, settings: Settings) -> str | None:
        """The run's warning, naming the labels and the settings that remove the copies; None without any."""
        if not self.containers:
            return None
        labels = sorted(self.differing, key=lambda name: (-self.differing[name], name))
        return (f"{self.containers} container(s) have several series of {settings.metric_cpu_usage} that differ in "
                f"{', '.join(labels)} ({'; '.join(self.examples)}): one copy of each is used, none are added "
                f"together. {_remedy(labels, settings)}")


def find_duplicates(samples: list[Sample], settings: Settings) -> Duplicates:
    """The duplicated containers in the answer to `duplicates_query`, and what tells their copies apart."""
    key_labels = (settings.label_namespace, settings.label_pod, settings.label_container)
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for labels, _ in samples:
        groups.setdefault(tuple(labels.get(name, "") for name in key_labels), []).append(labels)
    differing: Counter[str] = Counter()
    examples: list[str] = []
    for key, copies in sorted(groups.items()):
        if len(copies) < 2:
            continue
        names = {name for copy in copies for name in copy} - set(key_labels)
        varying = sorted(name for name in names if len({copy.get(name, "") for copy in copies}) > 1)
        differing.update(varying)
        if len(examples) < _EXAMPLES:
            shown = ", ".join(f"{name}={'|'.join(sorted({copy.get(name, '') for copy in copies}))}" for name in varying)
            examples.append(f"{'/'.join(key)}: {shown}")
    count = sum(1 for copies in groups.values() if len(copies) > 1)
    return Duplicates(count, dict(differing), tuple(examples))


def _remedy(labels: list[str], settings: Settings) -> str:
    """The settings that keep one copy: the cluster label for a central store, a selector for scrape jobs."""
    advice = []
    clusters = [name for name in labels if "cluster" in name.lower()]
    if clusters and not settings.prometheus_cluster_label:
        advice.append(f"set PROMETHEUS_CLUSTER_LABEL={clusters[0]} and CLUSTER_NAME to this cluster's value of it")
    others = [name for name in labels if name not in clusters]
    if others:
        advice.append(f"add a matcher on {' or '.join(others)} to PROMETHEUS_SELECTOR (e.g. "
                      f"PROMETHEUS_SELECTOR={others[0]}=\"<the one to keep>\")")
    return ("To keep one copy, " + "; ".join(advice) + ".") if advice else ""
