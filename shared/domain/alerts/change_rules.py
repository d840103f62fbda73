"""ResourceChangeHurt: a container's requests or limits changed, and OOM kills or CPU throttling rose after.

Off unless ALERT_RESOURCE_CHANGE_HURT=true. Judged on each run for the changes of the last
REPORT_CHANGE_WINDOW_HOURS: the time since the change against as long a time before it
(shared/domain/change_impact.py), so a change that starves a container is told within a collection
or two, while someone still remembers making it. The alert resolves once the change is older than
the window (the CPUThrottled and ContainerOOMKilled alerts go on telling about the container).
"""

from __future__ import annotations

from shared.core.formats import format_duration, utc_minute
from shared.domain.alerts.model import Alert, firing_alert
from shared.domain.alerts.rules import RuleContext
from shared.domain.change_impact import ResourceChange, change_windows, resource_changes
from shared.store.resource_history import (
    container_names,
    containers_with_new_spans,
    declared_spans,
    impact_samples,
    raw_history_start,
)


def resource_change_hurt(ctx: RuleContext) -> list[Alert] | None:
    """One alert per container whose newest change (within the window) was followed by more OOM kills or
    by CPU throttling above ALERT_CPU_THROTTLED_RATIO."""
    settings = ctx.settings
    if not settings.alert_resource_change_hurt:
        return []
    if ctx.run_ts is None:
        return None
    window = round(settings.report_change_window_hours * 3600)
    since, end = ctx.run_ts - window, ctx.run_ts + 1
    ids = containers_with_new_spans(ctx.conn, since)
    if not ids:
        return []
    start = max(since - window, raw_history_start(ctx.conn) or end)
    spans = declared_spans(ctx.conn, ids, start, end)
    names = container_names(ctx.conn, ids)
    alerts = []
    for container_id in ids:
        windows = change_windows(spans.get(container_id, []), start, end, window)
        if not windows or windows[-1][0] < since:
            continue  # a new pod or phase with the same requests and limits, or no change this recent
        at, _, _, length = windows[-1]
        samples = impact_samples(ctx.conn, [container_id], at - length, at + length).get(container_id, [])
        newest = resource_changes(windows[-1:], samples, settings.alert_cpu_throttled_ratio)[0]
        if newest.worse:
            alerts.append(_alert(ctx, names[container_id], newest))
    return alerts


def _alert(ctx: RuleContext, name: tuple[str, str, str, str], change: ResourceChange) -> Alert:
    namespace, kind, workload, container = name
    length = format_duration(change.after.end - change.after.start)
    return firing_alert(
        "ResourceChangeHurt", "warning", ctx.now,
        f"{container} in {namespace}/{workload} got worse after its resources changed",
        f"Container {container} of {kind} {namespace}/{workload} changed at {utc_minute(change.ts)} "
        f"({change.label}). In the {length} since, against the {length} before: {'; '.join(change.worse)}. "
        f"Consider reverting the change; `k8s-monitor report --workload {kind}/{workload}` shows the figures.",
        namespace=namespace, workload_kind=kind, workload=workload, container=container)
