"""Every built-in alert rule run at once on the latest run, and which namespaces that run lets them judge."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace

from shared.core.settings import Settings
from shared.domain.alerts.change_rules import resource_change_hurt
from shared.domain.alerts.container_rules import (
    container_oom_killed,
    container_restarting,
    cpu_throttled,
    memory_near_limit,
)
from shared.domain.alerts.model import Alert
from shared.domain.alerts.rules import (
    Rule,
    RuleContext,
    backup_missing,
    collection_failing,
    collection_stale,
    database_large,
)
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN

log = logging.getLogger(__name__)

RULES: dict[str, Rule] = {
    "CollectionFailing": collection_failing,
    "CollectionStale": collection_stale,
    "ContainerOOMKilled": container_oom_killed,
    "ContainerRestarting": container_restarting,
    "MemoryNearLimit": memory_near_limit,
    "CPUThrottled": cpu_throttled,
    "ResourceChangeHurt": resource_change_hurt,
    "DatabaseLarge": database_large,
    "BackupMissing": backup_missing,
}
CONTAINER_RULES = frozenset({"ContainerOOMKilled", "ContainerRestarting", "MemoryNearLimit", "CPUThrottled",
                             "ResourceChangeHurt"})


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


def evaluate_rules(conn: Connection, settings: Settings, now: float) -> Evaluation:
    """Every rule's firing alerts now, judged on the latest run that stored samples."""
    latest = conn.execute(
        f"SELECT id, CAST(started_at AS INTEGER), namespaces FROM runs WHERE {SUCCESSFUL_RUN}"
        f" ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    run_id, run_ts, scope = latest or (None, None, None)
    namespaces = judged_namespaces(scope, settings)
    ctx = RuleContext(conn, settings, now, run_id, run_ts)
    results: dict[str, list[Alert] | None] = {}
    for name, rule in RULES.items():
        try:
            alerts = rule(ctx)
        except sqlite3.Error:  # one broken rule keeps its alerts as they are; the others still count
            log.exception("alert rule %s could not be evaluated", name)
            alerts = None
        results[name] = None if alerts is None else [in_cluster(alert, settings.cluster_name) for alert in alerts]
    return Evaluation(results, namespaces)


def in_cluster(alert: Alert, cluster: str) -> Alert:
    """`alert` labelled `cluster` (CLUSTER_NAME) and its summary led by it: the monitors of several
    clusters may tell the same people, or feed one Alertmanager."""
    return replace(alert, labels={**alert.labels, "cluster": cluster}, summary=f"{cluster}: {alert.summary}",
                   fingerprint="")


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
