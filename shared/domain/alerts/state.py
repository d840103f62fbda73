"""Each alert's firing/resolved state in the `alerts` table, the claim of what to tell, and the listing.

People are told when an alert starts, again once per repeat interval while it fires, and once
when it resolves. A claim marks alerts as told before they are sent, and is released when no
channel could take them, so the next run tries again and concurrent runs never tell twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.domain.alerts.evaluation import Evaluation
from shared.domain.alerts.model import Alert, fingerprint
from shared.store.connection import transaction
from shared.store.dialect import Connection

RESOLVED_KEEP_SECONDS = 7 * 86_400

@dataclass(frozen=True)
class StateChange:
    """What one evaluation changed: alerts that started firing and alerts that resolved."""

    started: list[Alert]
    resolved: list[Alert]


def update_state(conn: Connection, evaluation: Evaluation, now: float) -> StateChange:
    """Store the evaluation: new alerts fire, firing ones stay, missing ones it judged resolve."""
    active = {a.fingerprint: a for alerts in evaluation.alerts.values() if alerts for a in alerts}
    started: list[Alert] = []
    resolved: list[Alert] = []
    with transaction(conn):
        firing = {fp: (name, json.loads(labels)) for fp, name, labels in
                  conn.execute("SELECT fingerprint, name, labels FROM alerts WHERE state = 'firing'")}
        _adopt_unlabelled(conn, active.values(), firing)
        for alert in active.values():
            if alert.fingerprint in firing:
                conn.execute(
                    "UPDATE alerts SET summary = ?, description = ?, severity = ?, last_seen_at = ?"
                    " WHERE fingerprint = ?",
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


def _adopt_unlabelled(conn: Connection, active: Iterable[Alert],
                      firing: dict[str, tuple[str, dict[str, str]]]) -> None:
    """Carry alerts stored before alerts had a `cluster` label over to their labelled selves.

    The label changes an alert's fingerprint; without this, the first evaluation after the upgrade
    would resolve every firing alert and fire it again, telling people twice about nothing new.
    The stored row takes the new fingerprint and labels and keeps its start and notification times.
    """
    for alert in active:
        if alert.fingerprint in firing or "cluster" not in alert.labels:
            continue
        legacy = fingerprint({key: value for key, value in alert.labels.items() if key != "cluster"})
        if legacy in firing and "cluster" not in firing[legacy][1]:
            conn.execute("UPDATE alerts SET fingerprint = ?, labels = ? WHERE fingerprint = ?",
                         (alert.fingerprint, json.dumps(alert.labels, sort_keys=True), legacy))
            firing[alert.fingerprint] = (firing.pop(legacy)[0], alert.labels)


_ALERT_COLUMNS = "fingerprint, name, severity, labels, summary, description, state, starts_at, ends_at"


def _load(conn: Connection, where: str, params: Iterable = ()) -> list[Alert]:
    rows = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {where} ORDER BY starts_at, name", tuple(params))
    return [
        Alert(name=name, severity=severity, labels=json.loads(labels), summary=summary, description=description,
              starts_at=starts_at, ends_at=ends_at, status=state, fingerprint=fp)
        for fp, name, severity, labels, summary, description, state, starts_at, ends_at in rows
    ]


def list_alerts(conn: Connection, now: float, resolved_within_seconds: float) -> list[Alert]:
    """Firing alerts, then those resolved within the window, newest first within each."""
    alerts = _load(conn, "state = 'firing' OR ends_at >= ?", (now - resolved_within_seconds,))
    return sorted(alerts, key=lambda a: (a.status != "firing", -(a.ends_at or a.starts_at)))


@dataclass(frozen=True)
class Claim:
    """Alerts marked as told at `claimed_at`, with when each was told before (to undo the mark)."""

    alerts: list[Alert]
    claimed_at: float
    told_before: dict[str, float | None] = field(default_factory=dict)


def claim_due(conn: Connection, now: float, repeat_interval_seconds: float) -> Claim:
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


def release_claim(conn: Connection, claim: Claim, alerts: Iterable[Alert]) -> None:
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
