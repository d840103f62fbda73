"""The channel-neutral message: one group of alerts of one severity, and the words all channels share.

A run's notifications are grouped by severity, so a run that finds two hundred throttled containers
sends one message per channel and severity, not two hundred.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.core.formats import utc_minute
from shared.domain.alerts.model import SEVERITIES, Alert

PRODUCT = "k8s-resource-monitor"


@dataclass(frozen=True)
class AlertGroup:
    """Alerts of one severity sent together; `truncated` counts alerts the sender left out."""

    severity: str
    alerts: tuple[Alert, ...]
    external_url: str | None = None
    truncated: int = 0

    @property
    def firing(self) -> list[Alert]:
        """The group's alerts that fire now."""
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        """The group's alerts that have been resolved."""
        return [a for a in self.alerts if a.status != "firing"]

    @property
    def status(self) -> str:
        """`firing` while any alert of the group fires, else `resolved`."""
        return "firing" if self.firing else "resolved"

    @property
    def fingerprints(self) -> list[str]:
        """The fingerprints of the group's alerts, recorded with each delivery attempt."""
        return [a.fingerprint for a in self.alerts]


def group_by_severity(alerts: Iterable[Alert], external_url: str | None = None, truncated: int = 0) -> list[AlertGroup]:
    """One group per severity, most severe first; firing alerts before resolved ones in each."""
    by_severity: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_severity.setdefault(alert.severity, []).append(alert)
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    return [
        AlertGroup(severity, tuple(sorted(items, key=lambda a: (a.status != "firing", a.name, a.where))),
                   external_url, truncated)
        for severity, items in sorted(by_severity.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    ]


def cluster_of(group: AlertGroup, default: str) -> str:
    """The cluster the group is about: its alerts' common `cluster` label, else `default` (CLUSTER_NAME).

    Our alerts carry CLUSTER_NAME; an Alertmanager that relays several clusters' alerts labels each.
    """
    clusters = {alert.labels.get("cluster") for alert in group.alerts}
    common = clusters.pop() if len(clusters) == 1 else None
    return common or default


def headline(group: AlertGroup, cluster: str | None = None) -> str:
    """`CRITICAL: 2 firing, 1 resolved in prod-eu` — the subject of every channel's message."""
    counts = []
    if group.firing:
        counts.append(f"{len(group.firing)} firing")
    if group.resolved:
        counts.append(f"{len(group.resolved)} resolved")
    if group.truncated:
        counts.append(f"{group.truncated} more not shown")
    return f"{group.severity.upper()}: {', '.join(counts)}{f' in {cluster}' if cluster else ''}"


def alert_names(group: AlertGroup, limit: int = 5) -> str:
    """`ContainerOOMKilled, CPUThrottled (+3)`: the distinct alert names, for subjects."""
    names = list(dict.fromkeys(a.name for a in group.alerts))
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit})" if len(names) > limit else shown




def context_labels(alert: Alert) -> list[tuple[str, str]]:
    """The labels worth showing: everything but the name and severity, which the message says."""
    return [(k, v) for k, v in sorted(alert.labels.items()) if k not in ("alertname", "severity") and v]


def plain_text(group: AlertGroup, cluster: str | None = None) -> str:
    """The message as plain text: the email body, and Slack's notification fallback."""
    lines = [f"[{PRODUCT}] {headline(group, cluster)}", ""]
    for alert in group.alerts:
        lines.append(f"{alert.status.upper()} {alert.name}: {alert.summary}")
        labels = ", ".join(f"{k}={v}" for k, v in context_labels(alert))
        if labels:
            lines.append(f"  labels: {labels}")
        if alert.description:
            lines.append(f"  {alert.description}")
        span = f"  since {utc_minute(alert.starts_at)}"
        if alert.status != "firing":
            span += f", resolved {utc_minute(alert.ends_at)}"
        lines.append(span)
        if alert.generator_url:
            lines.append(f"  source: {alert.generator_url}")
        lines.append("")
    if group.external_url:
        lines.append(f"More: {group.external_url}")
    return "\n".join(lines).rstrip() + "\n"
