"""The alert rules about containers: OOM kills, restarts, memory near its limit, CPU throttling.

They look at the latest run's samples and name a workload's container (pods churn, a workload does
not), so a Deployment with ten OOM-killed replicas is one alert whose description names the worst
pod; a run of a few namespaces judges the containers of those only (see `evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.core.formats import format_bytes
from shared.domain.alerts.model import Alert, firing_alert
from shared.domain.alerts.rules import RuleContext

_CONTAINER_COLUMNS = (
    "w.namespace, w.kind, w.name, c.name, p.name, s.restart_count, s.last_termination_reason, s.oom_events,"
    " cs.memory_limit_bytes, s.memory_working_set_max_bytes, s.cpu_throttled_ratio, cs.cpu_limit_millicores"
)
# A sample names its span: the pod's container, with its requests and limits then.
_CONTAINER_JOINS = (
    "FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN containers c ON c.id = cs.container_id"
    " JOIN workloads w ON w.id = c.workload_id JOIN pods p ON p.id = cs.pod_id"
)


@dataclass(frozen=True)
class _Row:
    """One container of one pod in the latest run, with the figures the container rules judge."""

    namespace: str
    kind: str
    workload: str
    container: str
    pod: str
    restart_count: int
    reason: str | None
    oom_events: int | None
    memory_limit_bytes: int | None
    memory_max_bytes: int | None
    throttled_ratio: float | None
    cpu_limit_millicores: int | None
    value: float = 0.0  # what the rule measured, to pick the worst pod


def _rows(ctx: RuleContext, where: str, measured: str, with_clause: str = "", **params: object) -> list[_Row]:
    """The latest run's samples matching `where`, with `measured` as each row's value."""
    query = (f"{with_clause} SELECT {_CONTAINER_COLUMNS}, COALESCE({measured}, 0.0) {_CONTAINER_JOINS}"
             f" WHERE s.run_id = :run_id AND ({where})")
    return [_Row(*row) for row in ctx.conn.execute(query, {"run_id": ctx.run_id, **params})]


def _has_usage(ctx: RuleContext, column: str) -> bool:
    """Whether the latest run stored this usage figure at all (Prometheus may have been down)."""
    return ctx.conn.execute(f"SELECT 1 FROM samples WHERE run_id = ? AND {column} IS NOT NULL LIMIT 1",
                            (ctx.run_id,)).fetchone() is not None


def _per_container(rows: list[_Row], build: Callable[[_Row, int], Alert]) -> list[Alert]:
    """One alert per workload container, built from its worst pod and the number of pods hit."""
    groups: dict[tuple[str, str, str, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.namespace, row.kind, row.workload, row.container), []).append(row)
    return [build(max(group, key=lambda r: (r.value, r.pod)), len(group)) for group in groups.values()]


def _container_alert(name: str, severity: str, now: float, row: _Row, summary: str, description: str) -> Alert:
    return firing_alert(name, severity, now, summary, description, namespace=row.namespace,
                        workload_kind=row.kind, workload=row.workload, container=row.container)


def _times(count: float) -> str:
    return "once" if count == 1 else f"{count:.0f} times"


def _pods(count: int, row: _Row) -> str:
    return f"pod {row.pod}" if count == 1 else f"{count} pods (worst: {row.pod})"


# The pod's container's sample before this run's: the newest run started in an earlier second that
# has one (runs backwards in time, each looked up in the pod's container's spans).
_OOM_KILLS = """
WITH kills AS (
    SELECT s.span_id, MAX(
        COALESCE(CASE WHEN s.last_termination_reason = 'OOMKilled' THEN s.restart_count - (
            SELECT o.restart_count FROM runs r CROSS JOIN container_spans os CROSS JOIN samples o
            WHERE r.started_at < :run_ts AND os.pod_id = cs.pod_id AND os.container_id = cs.container_id
              AND o.run_id = r.id AND o.span_id = os.id
            ORDER BY r.started_at DESC LIMIT 1) END, 0),
        COALESCE(s.oom_events, 0)) AS count
    FROM samples s JOIN container_spans cs ON cs.id = s.span_id
    WHERE s.run_id = :run_id AND (s.last_termination_reason = 'OOMKilled' OR s.oom_events > 0)
)"""


def container_oom_killed(ctx: RuleContext) -> list[Alert] | None:
    """A container OOM-killed since the previous run: its restart count rose with the reason
    OOMKilled, or cAdvisor counted OOM events in the run's window.

    Not "its last termination was OOMKilled": Kubernetes keeps that reason until the next
    termination, so one kill weeks ago would keep the alert firing (and repeating) for weeks.
    """
    if ctx.run_id is None:
        return None
    rows = _rows(ctx, "s.span_id IN (SELECT span_id FROM kills WHERE count > 0)",
                 "(SELECT count FROM kills k WHERE k.span_id = s.span_id)", _OOM_KILLS, run_ts=ctx.run_ts)

    def build(row: _Row, count: int) -> Alert:
        limit = (f"its memory limit is {format_bytes(row.memory_limit_bytes)}" if row.memory_limit_bytes
                 else "it has no memory limit")
        return _container_alert(
            "ContainerOOMKilled", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} was OOMKilled",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} was killed for running out "
            f"of memory {_times(row.value)} since the previous collection in {_pods(count, row)} "
            f"({row.restart_count} restarts in all); {limit}. Raise the memory limit or find the leak.")

    return _per_container(rows, build)


# The samples of each restarted pod's container from :since to this run (a run's time in whole seconds,
# so up to :run_ts + 1), through its spans.
_RESTARTS = """
WITH candidates AS (
    SELECT cs.pod_id, cs.container_id FROM samples s JOIN container_spans cs ON cs.id = s.span_id
    WHERE s.run_id = :run_id AND s.restart_count > 0
), steps AS (
    SELECT os.pod_id, os.container_id, o.last_termination_reason AS reason,
           o.restart_count - LAG(o.restart_count) OVER (
               PARTITION BY os.pod_id, os.container_id ORDER BY CAST(r.started_at AS INTEGER)) AS rise
    FROM candidates c CROSS JOIN container_spans os CROSS JOIN runs r CROSS JOIN samples o
    WHERE os.pod_id = c.pod_id AND os.container_id = c.container_id
      AND r.started_at >= :since AND r.started_at < :run_ts + 1 AND o.run_id = r.id AND o.span_id = os.id
), restarts AS (
    SELECT pod_id, container_id, SUM(rise) AS count FROM steps
    WHERE rise > 0 AND COALESCE(reason, '') <> 'OOMKilled' GROUP BY pod_id, container_id
)"""


def container_restarting(ctx: RuleContext) -> list[Alert] | None:
    """Restarts within ALERT_RESTART_WINDOW_SECONDS that were not OOM kills (those have their own alert).

    Each rise of the restart count between two runs is put down to the termination reason the
    later run saw, so a container that was OOM-killed and then fixed is not "restarting".
    """
    if ctx.run_id is None or ctx.run_ts is None:
        return None
    rows = _rows(ctx, "(cs.pod_id, cs.container_id) IN (SELECT pod_id, container_id FROM restarts)",
                 "(SELECT count FROM restarts r WHERE r.pod_id = cs.pod_id AND r.container_id = cs.container_id)",
                 _RESTARTS, since=ctx.run_ts - ctx.settings.alert_restart_window_seconds, run_ts=ctx.run_ts)
    window_minutes = ctx.settings.alert_restart_window_seconds / 60

    def build(row: _Row, count: int) -> Alert:
        reason = f", last terminated with reason {row.reason}" if row.reason else ""
        return _container_alert(
            "ContainerRestarting", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} is restarting",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} restarted {_times(row.value)} "
            f"in the last {window_minutes:.0f} minutes in {_pods(count, row)} ({row.restart_count} restarts in all"
            f"{reason}). Check `kubectl logs --previous` for the pod.")

    return _per_container(rows, build)


def memory_near_limit(ctx: RuleContext) -> list[Alert] | None:
    """Peak working set in the window above ALERT_MEMORY_NEAR_LIMIT_RATIO of the memory limit."""
    if ctx.run_id is None or not _has_usage(ctx, "memory_working_set_max_bytes"):
        return None
    ratio = ctx.settings.alert_memory_near_limit_ratio
    share = "CAST(s.memory_working_set_max_bytes AS REAL) / cs.memory_limit_bytes"
    rows = _rows(ctx, f"cs.memory_limit_bytes > 0 AND {share} > :ratio", share, ratio=ratio)

    def build(row: _Row, count: int) -> Alert:
        return _container_alert(
            "MemoryNearLimit", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} uses {row.value:.0%} of its memory limit",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} peaked at "
            f"{format_bytes(row.memory_max_bytes)} of its {format_bytes(row.memory_limit_bytes)} limit "
            f"({row.value:.0%}, above "
            f"{ratio:.0%}) in {_pods(count, row)}. It will be OOM-killed if it grows; raise the limit.")

    return _per_container(rows, build)


def cpu_throttled(ctx: RuleContext) -> list[Alert] | None:
    """CFS throttling above ALERT_CPU_THROTTLED_RATIO of the periods in the window."""
    if ctx.run_id is None or not _has_usage(ctx, "cpu_throttled_ratio"):
        return None
    ratio = ctx.settings.alert_cpu_throttled_ratio
    rows = _rows(ctx, "s.cpu_throttled_ratio > :ratio", "s.cpu_throttled_ratio", ratio=ratio)

    def build(row: _Row, count: int) -> Alert:
        limit = f"{row.cpu_limit_millicores}m" if row.cpu_limit_millicores else "its CPU limit"
        return _container_alert(
            "CPUThrottled", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} is CPU-throttled {row.value:.0%} of the time",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} was throttled in "
            f"{row.value:.0%} of its CPU periods (above {ratio:.0%}) at a limit of {limit}, in {_pods(count, row)}. "
            f"Raise or remove the CPU limit.")

    return _per_container(rows, build)
