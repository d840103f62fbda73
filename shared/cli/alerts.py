"""`k8s-monitor alerts`: the alerts firing now and those resolved recently, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import time

from shared.cli import cli_settings
from shared.core.formats import utc_minute
from shared.domain.alerts.model import Alert, rfc3339
from shared.domain.alerts.state import list_alerts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor alerts`."""
    parser.add_argument("--resolved-hours", type=float, default=24.0,
                        help="also list alerts resolved within this many hours (default 24)")
    parser.add_argument("--json", action="store_true", help="print the alerts as JSON")
    parser.add_argument("--cluster", help="PostgreSQL: this cluster's alerts (default CLUSTER_NAME)")


def run(args: argparse.Namespace) -> int:
    """Print the firing and recently resolved alerts; exit code 0."""
    from shared.store.connection import open_store

    if args.resolved_hours < 0:
        raise ValueError("--resolved-hours must not be negative")
    settings = cli_settings()
    conn = open_store(settings, readonly=True, cluster=args.cluster)
    try:
        alerts = list_alerts(conn, time.time(), args.resolved_hours * 3600)
    finally:
        conn.close()
    if args.json:
        print(json.dumps([_as_json(a) for a in alerts], indent=2))
    else:
        print(alert_table(alerts, args.resolved_hours))
    return 0


def alert_table(alerts: list[Alert], resolved_hours: float) -> str:
    """A fixed-width table for people, or a line saying there is nothing."""
    if not alerts:
        return f"No alerts firing or resolved in the last {resolved_hours:g} hours."
    rows = [("STATE", "SEVERITY", "ALERT", "WHERE", "SINCE", "RESOLVED", "SUMMARY")]
    rows += [(a.status, a.severity, a.name, a.where or "-", utc_minute(a.starts_at),
              utc_minute(a.ends_at) if a.status != "firing" else "-", a.summary) for a in alerts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    firing = sum(a.status == "firing" for a in alerts)
    return "\n".join(lines + ["", f"{firing} firing, {len(alerts) - firing} resolved"])


def _as_json(alert: Alert) -> dict:
    return {"fingerprint": alert.fingerprint, "name": alert.name, "severity": alert.severity,
            "state": alert.status, "labels": alert.labels, "summary": alert.summary,
            "description": alert.description, "starts_at": rfc3339(alert.starts_at), "ends_at": rfc3339(alert.ends_at)}
