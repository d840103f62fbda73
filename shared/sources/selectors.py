"""Which series are this cluster's containers: the label matchers inside every metric selector of every query.

Three kinds of matcher meet here, all typed (shared/core/matchers.py) and rendered with their
quoting, never pasted: the setup's scope (the cluster label equal to CLUSTER_NAME on a central
Prometheus, and PROMETHEUS_SELECTOR), cAdvisor's own rule (no pod-level `container=""` series, no
pause `container="POD"` series), and the run's namespaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.core.matchers import LabelMatcher, literal_regex, render_matchers

if TYPE_CHECKING:
    from shared.core.settings import Settings

# cAdvisor labels that name one run of a container (its cgroup, runtime name and image): a restarted
# container gets a new series that differs in them, and its usage is added to the old one's.
CONTAINER_INSTANCE_LABELS = ("id", "name", "image")


def scope_matchers(settings: Settings) -> tuple[LabelMatcher, ...]:
    """PROMETHEUS_CLUSTER_LABEL=CLUSTER_NAME (when set) and PROMETHEUS_SELECTOR: this setup's series."""
    cluster = (LabelMatcher(settings.prometheus_cluster_label, "=", settings.cluster_name),
               ) if settings.prometheus_cluster_label else ()
    return cluster + tuple(settings.prometheus_selector)


def container_matchers(settings: Settings, namespaces: tuple[str, ...] | None) -> tuple[LabelMatcher, ...]:
    """The scope, without pod-level and pause series, in the wanted namespaces.

    `namespaces=None` means the configured scope: `NAMESPACES_INCLUDE` when set, else everything.
    """
    container = settings.label_container
    matchers = [*scope_matchers(settings), LabelMatcher(container, "!=", ""), LabelMatcher(container, "!=", "POD")]
    wanted = namespaces if namespaces is not None else settings.namespaces_include
    if len(wanted) == 1:
        matchers.append(LabelMatcher(settings.label_namespace, "=", wanted[0]))
    elif wanted:
        matchers.append(LabelMatcher(settings.label_namespace, "=~", literal_regex(wanted)))
    return tuple(matchers)


def selector(metric: str, matchers: tuple[LabelMatcher, ...]) -> str:
    """`metric{matchers}`; the metric alone when there are none."""
    return metric + (render_matchers(matchers) if matchers else "")
