"""The query plan (EXPLAIN QUERY PLAN) of every statement the monitor runs on its database.

Writes a few days of synthetic history (every 5 minutes, retention on, raw samples kept one day so
hours are rolled up and deleted), with OOM kills and restarts for the alert rules, then runs what
reads it: the retention pass and folds after each run, the alert rules (ResourceChangeHurt on: a
quarter of the workloads change a request with each daily rollout), reports over several windows
and filters (raw, hourly and daily pieces), the report page's charts, the demo summary, health,
metrics and diagnose. Every statement is traced where it runs; each distinct one (literals
stripped) is printed once with the code that ran it and its plan, then a count of full scans and
temporary sorts per table. Run it on two commits to compare their plans:

    PYTHONPATH=. .venv/bin/python benchmarks/query_plans.py [--pods 120] [--days 3]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from benchmarks.synthetic import synthetic_inventory, synthetic_usage  # noqa: E402
from shared.core.settings import load_settings  # noqa: E402
from shared.store.runs import RunRecord, store_collection  # noqa: E402

DAY = 86_400
INTERVAL = 300
_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b")
_SKIPPED = re.compile(r"^\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|CREATE|ALTER|DROP|ANALYZE)\b", re.I)


class Tracer:
    """Collects each distinct statement once, with the first place in shared/ that ran it."""

    def __init__(self) -> None:
        self.statements: dict[str, tuple[str, str]] = {}  # normalised -> (example with values, caller)

    def __call__(self, sql: str) -> None:
        if _SKIPPED.match(sql) or sql.lstrip().upper().startswith("EXPLAIN"):
            return
        key = " ".join(_LITERALS.sub("?", sql).split())
        if key not in self.statements:
            self.statements[key] = (sql, _caller())


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if "shared" in path.parts:
            return f"{'/'.join(path.parts[path.parts.index('shared'):])}:{frame.name}"
    return "?"


def traced_connections(tracer: Tracer) -> None:
    """Every connection opened from now on reports its statements to `tracer`."""
    connect = sqlite3.connect

    def traced(*args, **kwargs):  # type: ignore[no-untyped-def]
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(tracer)
        return conn

    sqlite3.connect = traced  # type: ignore[assignment]


def write_history(settings, pods: int, days: int, tracer: Tracer) -> float:  # type: ignore[no-untyped-def]
    """`days` of runs ending at a UTC midnight plus 6 hours; every run followed by retention. The clock."""
    from shared.domain.alerts.evaluation import evaluate_rules
    from shared.store.connection import connect
    from shared.store.retention import retention_after_collection

    now = [float((int(__import__("time").time()) // DAY - days) * DAY)]
    rng = random.Random(1)
    conn = connect(settings.database_path)
    runs = days * DAY // INTERVAL + 6 * 3600 // INTERVAL
    for number in range(runs):
        inventory = synthetic_inventory(pods, generation=number // (DAY // INTERVAL), nodes=5)
        for index, pod in enumerate(inventory.pods):  # restarts and OOM kills for the alert rules
            if index % 9 == 0:
                pod.containers[0].restart_count = number // 12
                pod.containers[0].last_termination_reason = "OOMKilled" if index % 18 == 0 else "Error"
            if index % 13 == 0:
                pod.phase = "Pending" if number % 24 < 2 else "Running"
            if index % 8 < 4 and (number // (DAY // INTERVAL)) % 2:  # every other day's rollout halves a request
                pod.containers[0].cpu_request_millicores //= 2
        at = now[0]
        if number == runs - 3:  # a late run: an hour back, after later ones
            at -= 3600
        run = RunRecord(trigger="schedule", started_at=at, finished_at=at + 1.0, status="ok",
                        pods=len(inventory.pods), containers=inventory.container_count, nodes=5,
                        window_seconds=INTERVAL)
        store_collection(conn, run, inventory, synthetic_usage(inventory, rng))
        now[0] += INTERVAL
        retention_after_collection(settings, clock=lambda: now[0])
    evaluate_rules(conn, settings, now[0])
    conn.close()
    return now[0]


def read_everything(settings, now: float) -> None:  # type: ignore[no-untyped-def]
    """What reads the database: reports (every source), charts, summary, health, metrics, diagnose."""
    from shared.domain.report.build import build_report
    from shared.domain.report.query import parse_report_query
    from shared.domain.report.summary import summarize
    from shared.ops.diagnose.memory import _own_containers
    from shared.ops.health import read_monitor_state
    from shared.ops.metrics import DatabaseCollector
    from shared.store.connection import connect
    from shared.store.usage_series import data_span, series_step, usage_series

    conn = connect(settings.database_path, readonly=True)
    for params in ({"window": "1h"}, {"window": "30h"}, {"window": "1d"}, {"window": "2d"},
                   {"window": "2d", "namespace": "team-1"}, {"window": "1d", "workload": "Deployment/app-3"},
                   {"window": "6h", "namespace": "team-2"}):
        report = build_report(conn, parse_report_query({**params, "limit": "all"}, settings, now), settings, now)
        ids = [c.container_id for c in report.containers[:5]]
        usage_series(conn, ids, report.query.window, series_step(data_span(conn, ids, report.query.window), INTERVAL))
    summarize(conn, settings, now=now)
    read_monitor_state(conn)
    conn.close()
    _own_containers(settings.database_path, "team-1")
    list(DatabaseCollector(settings).collect())
    connect(settings.database_path).close()


def explain(database: Path, tracer: Tracer) -> None:
    conn = sqlite3.connect(database)
    scans: Counter[str] = Counter()
    for key, (sql, caller) in sorted(tracer.statements.items(), key=lambda item: (item[1][1], item[0])):
        try:
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        except sqlite3.Error as exc:
            plan = [(0, 0, 0, f"(cannot explain: {exc})")]
        lines = [detail for _, _, _, detail in plan]
        if not any(word in line for line in lines for word in ("SCAN", "SEARCH", "TEMP")):
            continue  # plain INSERT ... VALUES and the like
        print(f"-- {caller}\n{key[:600]}")
        for line in lines:
            print(f"     {line}")
            if line.startswith(("SCAN", "USE TEMP")) and "json_each" not in line and "CONSTANT ROW" not in line:
                scans[line] += 1
        print()
    print("== full scans and temporary sorts (statements) ==")
    for line, count in sorted(scans.items()):
        print(f"{count:>4}  {line}")
    print(f"== {len(tracer.statements)} distinct statements traced ==")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=120)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-plans-"))
    try:
        settings = load_settings(database_path=workdir / "k8s_metrics.db", retention_raw_days=1,
                                 retention_hourly_days=3, report_window_days=2, log_level="WARNING",
                                 pod_namespace="team-1", alert_resource_change_hurt=True)
        tracer = Tracer()
        traced_connections(tracer)
        now = write_history(settings, args.pods, args.days, tracer)
        read_everything(settings, now)
        explain(settings.database_path, tracer)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
