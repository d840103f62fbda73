"""What every alert rule sees, and the rules about the monitor's own work: collection, database, backups.

Each rule reads the database and answers the alerts that fire now: an empty list when none does,
None when it had nothing to decide on (the alert state is then kept as it was).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.core.formats import format_bytes
from shared.core.settings import Settings
from shared.domain.alerts.model import Alert, firing_alert, rfc3339
from shared.store.connection import store_name
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN
from shared.store.size import stored_bytes


@dataclass(frozen=True)
class RuleContext:
    """What every rule may look at: the database, the thresholds, the time, the latest run."""

    conn: Connection
    settings: Settings
    now: float
    run_id: int | None  # the latest run that stored samples (ok or partial)
    run_ts: int | None


Rule = Callable[[RuleContext], list[Alert] | None]  # None: could not be evaluated, keep the state


def collection_failing(ctx: RuleContext) -> list[Alert]:
    """More than ALERT_COLLECTION_FAILURES failed runs in the last hour."""
    count, last_error = ctx.conn.execute(
        "SELECT COUNT(*), (SELECT error FROM runs WHERE status = 'failed' AND started_at >= :since"
        " ORDER BY started_at DESC LIMIT 1) FROM runs WHERE status = 'failed' AND started_at >= :since",
        {"since": ctx.now - 3600},
    ).fetchone()
    limit = ctx.settings.alert_collection_failures
    if count <= limit:
        return []
    return [firing_alert("CollectionFailing", "critical", ctx.now, f"{count} collections failed in the last hour",
                          f"{count} collection runs failed in the last hour (more than {limit}, "
                          f"ALERT_COLLECTION_FAILURES). Latest error: {last_error or 'unknown'}")]


def collection_stale(ctx: RuleContext) -> list[Alert]:
    """No successful run for ALERT_STALE_INTERVALS collection intervals."""
    last_success, first_run = ctx.conn.execute(
        f"SELECT (SELECT MAX(finished_at) FROM runs WHERE {SUCCESSFUL_RUN}), (SELECT MIN(started_at) FROM runs)"
    ).fetchone()
    since = last_success if last_success is not None else first_run
    limit_seconds = ctx.settings.alert_stale_intervals * ctx.settings.collect_interval_seconds
    if since is None or ctx.now - since <= limit_seconds:
        return []
    age_minutes = (ctx.now - since) / 60
    what = f"since {rfc3339(last_success)}" if last_success is not None else "ever"
    return [firing_alert("CollectionStale", "critical", ctx.now,
                          f"no successful collection for {age_minutes:.0f} minutes",
                          f"No collection has succeeded {what}: more than {ctx.settings.alert_stale_intervals} "
                          f"intervals of {ctx.settings.collect_interval_seconds}s. The stored usage is out of date; "
                          f"check the collect function's logs and `k8s-monitor health`.")]


def database_large(ctx: RuleContext) -> list[Alert]:
    """The database file is larger than ALERT_DATABASE_MAX_BYTES."""
    size_bytes, limit = stored_bytes(ctx.conn), ctx.settings.alert_database_max_bytes
    if size_bytes <= limit:
        return []
    return [firing_alert("DatabaseLarge", "warning", ctx.now, f"database is {format_bytes(size_bytes)}",
                          f"The database {store_name(ctx.settings)} holds {format_bytes(size_bytes)}, more than "
                          f"ALERT_DATABASE_MAX_BYTES ({format_bytes(limit)}). Lower RETENTION_RAW_DAYS or grow the "
                          "volume.")]


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
    return [firing_alert("BackupMissing", "warning", ctx.now, f"no good backup for {hours:g} hours",
                          f"No successful backup in {hours:g} hours (ALERT_BACKUP_MAX_AGE_HOURS); {what}. "
                          f"Check the backup function and BACKUP_DIR.")]


