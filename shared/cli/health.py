"""`k8s-monitor health`: the health function's report, for people (or `--json`); exit 1 when unhealthy."""

from __future__ import annotations

import argparse
import json

from shared.cli import cli_settings
from shared.core.formats import ago, format_bytes
from shared.ops.health import UNHEALTHY, HealthReport, check_health


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor health`."""
    parser.add_argument("--json", action="store_true", help="print the report as the /health endpoint answers it")
    parser.add_argument("--cluster", help="PostgreSQL: this cluster's data and collections (default CLUSTER_NAME)")


def run(args: argparse.Namespace) -> int:
    """Print the health report; exit 1 when unhealthy (a degraded component still gives 0)."""
    report = check_health(cli_settings(), cluster=args.cluster)
    print(json.dumps(report.as_dict(), indent=2) if args.json else render_report(report))
    return 1 if report.status == UNHEALTHY else 0


def render_report(report: HealthReport) -> str:
    """A few aligned lines: overall status, then one line per component with what to fix."""
    body = report.as_dict()
    lines = [f"k8s-resource-monitor {report.version}: {report.status.upper()} at {body['timestamp']}"]
    for name, check in report.checks.items():
        latency = f"{check.latency_seconds * 1000:6.0f} ms" if check.latency_seconds is not None else " " * 9
        lines.append(f"  {name:<11} {check.status:<10}{latency}  {check.error or _summary(name, body)}")
    return "\n".join(lines)


def _summary(name: str, body: dict) -> str:
    """What a healthy component's line shows: the figures an operator checks next."""
    check = body["checks"][name]
    if name == "database":
        size = body["database_size_bytes"] or 0
        backup = (f"last backup {ago(body['last_backup_age_seconds'])}" if body["last_backup"]
                  else "no backup yet")
        where = check.get("path") or check.get("url")  # a SQLite file, or a PostgreSQL server (shown URL)
        return f"{where}, {format_bytes(size)}, schema {body['schema_version']}, {backup}"
    if name == "kubernetes":
        return f"{check['server']}, may list pods"
    if name == "prometheus":
        return f"{check['url']}, every metric the collector queries is present"
    return (f"last success {ago(body['last_successful_collection_age_seconds'])}, "
            f"last run {body['last_run_status']}")

