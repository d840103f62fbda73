"""Built-in alert rules over the stored history, and each alert's firing/resolved state.

Rules read the database, not the cluster: they run after every collection on what that run stored.
Container rules look at the latest run's samples and name a workload's container (pods churn, a
workload does not), so a Deployment with ten OOM-killed replicas is one alert whose description
names the worst pod; a run of a few namespaces judges the containers of those only. State lives in the `alerts` table, keyed by a fingerprint of the labels, so
people are told when an alert starts, again once per repeat interval while it fires, and once when
it resolves. A claim marks alerts as told before they are sent, and is released when no channel
could take them, so the next run tries again and concurrent runs never tell twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.core.settings import Settings
from shared.core.timeutil import iso_utc
from shared.store.connection import transaction

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning", "info")
RESOLVED_KEEP_SECONDS = 7 * 86_400
_GOOD_RUN = "('ok', 'partial')"


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of an alert: the same labels always give the same 16 hex digits."""
    text = "\x00".join(f"{key}\x01{labels[key]}" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rfc3339(seconds: float | None) -> str | None:
    """Unix seconds as an RFC 3339 UTC time (`2024-05-01T12:00:00Z`), as Alertmanager writes them; None stays None."""
    return None if seconds is None else iso_utc(seconds)


@dataclass(frozen=True)
class Alert:
    """One alert as people are told about it; `labels` include `alertname` and `severity`."""

    name: str
    severity: str
    labels: dict[str, str]
    summary: str
    description: str
    starts_at: float
    ends_at: float | None = None
    status: str = "firing"
    generator_url: str | None = None
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    @property
    def where(self) -> str:
        """`namespace/Kind/name container` for container alerts, "" for cluster-wide ones."""
        labels = self.labels
        if "workload" not in labels:
            return labels.get("namespace", "")
        place = f"{labels.get('namespace', '')}/{labels.get('workload_kind', '')}/{labels['workload']}"
        return f"{place} {labels['container']}" if labels.get("container") else place

    def as_alertmanager(self) -> dict:
        """The alert in Alertmanager's webhook shape, which our CloudEvents and webhook reuse."""
        return {
            "status": self.status, "labels": self.labels,
            "annotations": {"summary": self.summary, "description": self.description},
            "startsAt": rfc3339(self.starts_at), "endsAt": rfc3339(self.ends_at) or "0001-01-01T00:00:00Z",
            "generatorURL": self.generator_url or "", "fingerprint": self.fingerprint,
        }


def _alert(name: str, severity: str, now: float, summary: str, description: str, **labels: str) -> Alert:
    return Alert(name, severity, {"alertname": name, "severity": severity, **labels}, summary, description, now)


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleContext:
    """What every rule may look at: the database, the thresholds, the time, the latest run."""

    conn: sqlite3.Connection
    settings: Settings
    now: float
    run_id: int | None  # the latest run that stored samples (ok or partial)
    run_ts: int | None


Rule = Callable[[RuleContext], list[Alert] | None]  # None: could not be evaluated, keep the state


def collection_failing(ctx: RuleContext) -> list[Alert]:
    """More than ALERT_COLLECTION_FAILURES failed runs in the last hour."""
    count, last_error = ctx.conn.execute(
        "SELECT COUNT(*), (SELECT error FROM runs WHERE status = 'failed' AND started_at >= ?1"
        " ORDER BY started_at DESC LIMIT 1) FROM runs WHERE status = 'failed' AND started_at >= ?1",
        (ctx.now - 3600,),
    ).fetchone()
    limit = ctx.settings.alert_collection_failures
    if count <= limit:
        return []
    return [_alert("CollectionFailing", "critical", ctx.now, f"{count} collections failed in the last hour",
                   f"{count} collection runs failed in the last hour (more than {limit}, "
                   f"ALERT_COLLECTION_FAILURES). Latest error: {last_error or 'unknown'}")]


def collection_stale(ctx: RuleContext) -> list[Alert]:
    """No successful run for ALERT_STALE_INTERVALS collection intervals."""
    last_success, first_run = ctx.conn.execute(
        f"SELECT (SELECT MAX(finished_at) FROM runs WHERE status IN {_GOOD_RUN}), (SELECT MIN(started_at) FROM runs)"
    ).fetchone()
    since = last_success if last_success is not None else first_run
    limit_seconds = ctx.settings.alert_stale_intervals * ctx.settings.collect_interval_seconds
    if since is None or ctx.now - since <= limit_seconds:
        return []
    age_minutes = (ctx.now - since) / 60
    what = f"since {rfc3339(last_success)}" if last_success is not None else "ever"
    return [_alert("CollectionStale", "critical", ctx.now, f"no successful collection for {age_minutes:.0f} minutes",
                   f"No collection has succeeded {what}: more than {ctx.settings.alert_stale_intervals} "
                   f"intervals of {ctx.settings.collect_interval_seconds}s. The stored usage is out of date; "
                   f"check the collect function's logs and `k8s-monitor health`.")]


def database_large(ctx: RuleContext) -> list[Alert]:
    """The database file is larger than ALERT_DATABASE_MAX_BYTES."""
    pages, page_size = (ctx.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
    size_bytes, limit = pages * page_size, ctx.settings.alert_database_max_bytes
    if size_bytes <= limit:
        return []
    return [_alert("DatabaseLarge", "warning", ctx.now, f"database is {_mib(size_bytes)}",
                   f"The database {ctx.settings.database_path} holds {_mib(size_bytes)}, more than "
                   f"ALERT_DATABASE_MAX_BYTES ({_mib(limit)}). Lower RETENTION_RAW_DAYS or grow the volume.")]


def backup_missing(ctx: RuleContext) -> list[Alert]:
    """No good backup for ALERT_BACKUP_MAX_AGE_HOURS (counted from the first run on a new install)."""
    last_backup, first_run = ctx.conn.execute(
        "SELECT (SELECT MAX(finished_at) FROM backups WHERE status = 'ok'), (SELECT MIN(started_at) FROM runs)"
    ).fetchone()
    since = last_backup if last_backup is not None else first_run
    hours = ctx.settings.alert_backup_max_age_hours
    if since is None or ctx.now - since <= hours * 3600:
        return []
    what = f"the last one finished {rfc3339(last_backup)}" if last_backup is not None else "none was ever taken"
    return [_alert("BackupMissing", "warning", ctx.now, f"no good backup for {hours:g} hours",
                   f"No successful backup in {hours:g} hours (ALERT_BACKUP_MAX_AGE_HOURS); {what}. "
                   f"Check the backup function and BACKUP_DIR.")]


_CONTAINER_COLUMNS = (
    "w.namespace, w.kind, w.name, c.name, p.name, s.restart_count, s.last_termination_reason, s.oom_events,"
    " s.memory_limit_bytes, s.memory_working_set_max_bytes, s.cpu_throttled_ratio, s.cpu_limit_millicores"
)
_CONTAINER_JOINS = (
    "FROM samples s JOIN containers c ON c.id = s.container_id JOIN workloads w ON w.id = c.workload_id"
    " JOIN pods p ON p.id = s.pod_id"
)


@dataclass(frozen=True)
class _Row:
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
    query = (f"{with_clause} SELECT {_CONTAINER_COLUMNS}, {measured} {_CONTAINER_JOINS}"
             f" WHERE s.run_id = :run_id AND ({where})")
    return [_Row(*row[:12], value=row[12] or 0.0) for row in ctx.conn.execute(query, {"run_id": ctx.run_id, **params})]


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
    return _alert(name, severity, now, summary, description, namespace=row.namespace,
                  workload_kind=row.kind, workload=row.workload, container=row.container)


def _times(count: float) -> str:
    return "once" if count == 1 else f"{count:.0f} times"


def _pods(count: int, row: _Row) -> str:
    return f"pod {row.pod}" if count == 1 else f"{count} pods (worst: {row.pod})"


_OOM_KILLS = """
WITH kills AS (
    SELECT s.pod_id, s.container_id, MAX(
        COALESCE(CASE WHEN s.last_termination_reason = 'OOMKilled' THEN s.restart_count - (
            SELECT o.restart_count FROM samples o
            WHERE o.container_id = s.container_id AND o.pod_id = s.pod_id AND o.ts < s.ts
            ORDER BY o.ts DESC LIMIT 1) END, 0),
        COALESCE(s.oom_events, 0)) AS count
    FROM samples s WHERE s.run_id = :run_id AND (s.last_termination_reason = 'OOMKilled' OR s.oom_events > 0)
)"""


def container_oom_killed(ctx: RuleContext) -> list[Alert] | None:
    """A container OOM-killed since the previous run: its restart count rose with the reason
    OOMKilled, or cAdvisor counted OOM events in the run's window.

    Not "its last termination was OOMKilled": Kubernetes keeps that reason until the next
    termination, so one kill weeks ago would keep the alert firing (and repeating) for weeks.
    """
    if ctx.run_id is None:
        return None
    rows = _rows(ctx, "(s.pod_id, s.container_id) IN (SELECT pod_id, container_id FROM kills WHERE count > 0)",
                 "(SELECT count FROM kills k WHERE k.pod_id = s.pod_id AND k.container_id = s.container_id)",
                 _OOM_KILLS)

    def build(row: _Row, count: int) -> Alert:
        limit = f"its memory limit is {_mib(row.memory_limit_bytes)}" if row.memory_limit_bytes else "it has no memory limit"
        return _container_alert(
            "ContainerOOMKilled", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} was OOMKilled",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} was killed for running out "
            f"of memory {_times(row.value)} since the previous collection in {_pods(count, row)} "
            f"({row.restart_count} restarts in all); {limit}. Raise the memory limit or find the leak.")

    return _per_container(rows, build)


_RESTARTS = """
WITH candidates AS (
    SELECT pod_id, container_id FROM samples WHERE run_id = :run_id AND restart_count > 0
), steps AS (
    SELECT o.pod_id, o.container_id, o.last_termination_reason AS reason,
           o.restart_count - LAG(o.restart_count) OVER (PARTITION BY o.pod_id, o.container_id ORDER BY o.ts) AS rise
    FROM candidates c JOIN samples o ON o.container_id = c.container_id AND o.pod_id = c.pod_id
    WHERE o.ts >= :since AND o.ts <= :run_ts
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
    rows = _rows(ctx, "(s.pod_id, s.container_id) IN (SELECT pod_id, container_id FROM restarts)",
                 "(SELECT count FROM restarts r WHERE r.pod_id = s.pod_id AND r.container_id = s.container_id)",
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
    share = "CAST(s.memory_working_set_max_bytes AS REAL) / s.memory_limit_bytes"
    rows = _rows(ctx, f"s.memory_limit_bytes > 0 AND {share} > :ratio", share, ratio=ratio)

    def build(row: _Row, count: int) -> Alert:
        return _container_alert(
            "MemoryNearLimit", "warning", ctx.now, row,
            f"{row.container} in {row.namespace}/{row.workload} uses {row.value:.0%} of its memory limit",
            f"Container {row.container} of {row.kind} {row.namespace}/{row.workload} peaked at "
            f"{_mib(row.memory_max_bytes)} of its {_mib(row.memory_limit_bytes)} limit ({row.value:.0%}, above "
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


RULES: dict[str, Rule] = {
    "CollectionFailing": collection_failing,
    "CollectionStale": collection_stale,
    "ContainerOOMKilled": container_oom_killed,
    "ContainerRestarting": container_restarting,
    "MemoryNearLimit": memory_near_limit,
    "CPUThrottled": cpu_throttled,
    "DatabaseLarge": database_large,
    "BackupMissing": backup_missing,
}
CONTAINER_RULES = frozenset({"ContainerOOMKilled", "ContainerRestarting", "MemoryNearLimit", "CPUThrottled"})


@dataclass(frozen=True)
class Evaluation:
    """Every rule's firing alerts (None: the rule had no data to decide on), and the namespaces the
    container rules judged (None: every namespace)."""

    alerts: dict[str, list[Alert] | None]
    namespaces: frozenset[str] | None = None

    def judges(self, name: str, labels: dict[str, str]) -> bool:
        """Whether this evaluation decided about a firing alert: else it keeps firing as it was."""
        if self.alerts.get(name) is None:
            return False
        return self.namespaces is None or name not in CONTAINER_RULES or labels.get("namespace") in self.namespaces


def evaluate_rules(conn: sqlite3.Connection, settings: Settings, now: float) -> Evaluation:
    """Every rule's firing alerts now, judged on the latest run that stored samples."""
    latest = conn.execute(
        f"SELECT id, CAST(started_at AS INTEGER), namespaces FROM runs WHERE status IN {_GOOD_RUN}"
        f" ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    run_id, run_ts, scope = latest or (None, None, None)
    namespaces = judged_namespaces(scope, settings)
    ctx = RuleContext(conn, settings, now, run_id, run_ts)
    results: dict[str, list[Alert] | None] = {}
    for name, rule in RULES.items():
        try:
            results[name] = rule(ctx)
        except sqlite3.Error:  # one broken rule keeps its alerts as they are; the others still count
            log.exception("alert rule %s could not be evaluated", name)
            results[name] = None
    return Evaluation(results, namespaces)


def judged_namespaces(scope: str | None, settings: Settings) -> frozenset[str] | None:
    """The namespaces a run with this `runs.namespaces` scope lets container rules judge; None: all.

    A run asked for a few namespaces says nothing about the others: their alerts must neither
    resolve nor fire again on the next full run. A run over exactly NAMESPACES_INCLUDE is a full
    run of this installation: namespaces outside it are no longer watched, and their alerts resolve.
    """
    namespaces = frozenset(name for name in (scope or "").split(",") if name)
    if not namespaces or namespaces == frozenset(settings.namespaces_include):
        return None
    return namespaces


def _mib(value: int | float | None) -> str:
    return "unknown" if value is None else f"{value / 2**20:.0f} MiB"


# --- state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    """What one evaluation changed: alerts that started firing and alerts that resolved."""

    started: list[Alert]
    resolved: list[Alert]


def update_state(conn: sqlite3.Connection, evaluation: Evaluation, now: float) -> StateChange:
    """Store the evaluation: new alerts fire, firing ones stay, missing ones it judged resolve."""
    active = {a.fingerprint: a for alerts in evaluation.alerts.values() if alerts for a in alerts}
    started: list[Alert] = []
    resolved: list[Alert] = []
    with transaction(conn):
        firing = {fp: (name, json.loads(labels)) for fp, name, labels in
                  conn.execute("SELECT fingerprint, name, labels FROM alerts WHERE state = 'firing'")}
        for alert in active.values():
            if alert.fingerprint in firing:
                conn.execute(
                    "UPDATE alerts SET summary = ?, description = ?, severity = ?, last_seen_at = ? WHERE fingerprint = ?",
                    (alert.summary, alert.description, alert.severity, now, alert.fingerprint),
                )
                continue
            conn.execute(
                "INSERT INTO alerts (fingerprint, name, severity, labels, summary, description, state, starts_at,"
                " ends_at, last_seen_at, last_notified_at, resolved_notified_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'firing', ?, NULL, ?, NULL, NULL)"
                " ON CONFLICT (fingerprint) DO UPDATE SET severity = excluded.severity, summary = excluded.summary,"
                " description = excluded.description, state = 'firing', starts_at = excluded.starts_at, ends_at = NULL,"
                " last_seen_at = excluded.last_seen_at, last_notified_at = NULL, resolved_notified_at = NULL",
                (alert.fingerprint, alert.name, alert.severity, json.dumps(alert.labels, sort_keys=True),
                 alert.summary, alert.description, now, now),
            )
            started.append(alert)
        gone = [fp for fp, (name, labels) in firing.items() if fp not in active and evaluation.judges(name, labels)]
        conn.executemany("UPDATE alerts SET state = 'resolved', ends_at = ? WHERE fingerprint = ?",
                         [(now, fp) for fp in gone])
        resolved = _load(conn, f"fingerprint IN ({', '.join('?' * len(gone))})", gone) if gone else []
        conn.execute("DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ?", (now - RESOLVED_KEEP_SECONDS,))
    return StateChange(started, resolved)


_ALERT_COLUMNS = "fingerprint, name, severity, labels, summary, description, state, starts_at, ends_at"


def _load(conn: sqlite3.Connection, where: str, params: Iterable = ()) -> list[Alert]:
    rows = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {where} ORDER BY starts_at, name", tuple(params))
    return [
        Alert(name=name, severity=severity, labels=json.loads(labels), summary=summary, description=description,
              starts_at=starts_at, ends_at=ends_at, status=state, fingerprint=fp)
        for fp, name, severity, labels, summary, description, state, starts_at, ends_at in rows
    ]


def list_alerts(conn: sqlite3.Connection, now: float, resolved_within_seconds: float) -> list[Alert]:
    """Firing alerts, then those resolved within the window, newest first within each."""
    alerts = _load(conn, "state = 'firing' OR ends_at >= ?", (now - resolved_within_seconds,))
    return sorted(alerts, key=lambda a: (a.status != "firing", -(a.ends_at or a.starts_at)))


@dataclass(frozen=True)
class Claim:
    """Alerts marked as told at `claimed_at`, with when each was told before (to undo the mark)."""

    alerts: list[Alert]
    claimed_at: float
    told_before: dict[str, float | None] = field(default_factory=dict)


def claim_due(conn: sqlite3.Connection, now: float, repeat_interval_seconds: float) -> Claim:
    """Mark and return what people must be told now.

    Firing alerts are due when never told or last told a repeat interval ago. A resolved alert is
    due once, if its firing was told (nobody wants "resolved" for an alert they never saw) and it
    resolved within the repeat interval (a resolution that could not be sent for that long is stale).
    """
    with transaction(conn):
        due = "last_notified_at IS NULL OR last_notified_at <= ?"
        told_before = dict(conn.execute(
            f"SELECT fingerprint, last_notified_at FROM alerts WHERE state = 'firing' AND ({due})",
            (now - repeat_interval_seconds,)))
        firing = _load(conn, f"state = 'firing' AND ({due})", (now - repeat_interval_seconds,))
        resolved = _load(conn, "state = 'resolved' AND last_notified_at IS NOT NULL AND resolved_notified_at IS NULL"
                               " AND ends_at > ?", (now - repeat_interval_seconds,))
        conn.executemany("UPDATE alerts SET last_notified_at = ? WHERE fingerprint = ?",
                         [(now, a.fingerprint) for a in firing])
        conn.executemany("UPDATE alerts SET resolved_notified_at = ? WHERE fingerprint = ?",
                         [(now, a.fingerprint) for a in resolved])
    return Claim(firing + resolved, now, told_before)


def release_claim(conn: sqlite3.Connection, claim: Claim, alerts: Iterable[Alert]) -> None:
    """Undo the mark of `alerts` (no channel took them), so the next evaluation tries again.

    Only marks this claim set are undone: an alert that changed state since is left alone.
    """
    with transaction(conn):
        for alert in alerts:
            if alert.status == "firing":
                conn.execute("UPDATE alerts SET last_notified_at = ? WHERE fingerprint = ? AND last_notified_at = ?",
                             (claim.told_before.get(alert.fingerprint), alert.fingerprint, claim.claimed_at))
            else:
                conn.execute("UPDATE alerts SET resolved_notified_at = NULL WHERE fingerprint = ?"
                             " AND resolved_notified_at = ?", (alert.fingerprint, claim.claimed_at))
