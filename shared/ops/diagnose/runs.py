"""The diagnose check of the latest collection runs: their statuses, errors, warnings, timings and
what they asked of Prometheus."""

from __future__ import annotations

import sqlite3
from collections import Counter

from shared.core.formats import ago, format_bytes, iso_utc
from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE, Finding, Section
from shared.store.connection import StoreError, open_store
from shared.store.run_status import SUCCESSFUL_RUN_STATUSES, RunStatus


def runs_section(settings: Settings, limit: int, now: float) -> Section:
    """The latest `limit` runs, judged on the latest that did not skip; their errors counted as findings.

    `now` (Unix seconds) is when the age of the last successful run is told.
    """
    try:
        conn = open_store(settings, readonly=True)
        try:
            cursor = conn.execute("SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,))
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            conn.close()
    except (StoreError, sqlite3.Error) as exc:
        return Section(UNAVAILABLE, redact(f"runs cannot be read: {exc}"))
    for row in rows:
        row["duration_seconds"] = round(row["finished_at"] - row["started_at"], 3)
        row["started"], row["finished"] = iso_utc(row["started_at"]), iso_utc(row["finished_at"])
        row["error"] = redact(row["error"]) if row["error"] else None
    if not rows:
        return Section(PROBLEM, "no runs yet", [Finding("runs", PROBLEM, "the database holds no collection run",
                                                        "trigger one: `k8s-monitor collect`, or POST to collect")])
    counts = Counter(row["status"] for row in rows)
    summary = f"last {len(rows)}: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())
    success = next((row for row in rows if row["status"] in SUCCESSFUL_RUN_STATUSES), None)
    if success:
        timings = ", ".join(f"{part} {success[f'{part.lower()}_seconds'] or 0:.2f}s"
                            for part in ("Kubernetes", "Prometheus", "Database"))
        summary += (f"; last success run {success['id']} {ago(now - success['finished_at'])}: {success['pods']} "
                    f"pods in {success['duration_seconds']:.1f}s ({timings}){_prometheus_cost(success)}")
    troubles = Counter((row["status"], row["error"]) for row in rows
                       if row["status"] in (RunStatus.FAILED, RunStatus.PARTIAL))
    findings = [Finding(f"{n} run(s) {status}", PROBLEM, error) for (status, error), n in troubles.most_common(5)]
    latest = next((row for row in rows if row["status"] != RunStatus.SKIPPED), rows[0])
    findings += [Finding(f"run {latest['id']} warns", PROBLEM, redact(warning))
                 for warning in (latest.get("warnings") or "").splitlines()]
    status = OK if latest["status"] in (RunStatus.OK, RunStatus.SKIPPED) else PROBLEM
    return Section(status, f"latest run {latest['id']} {latest['status']}; {summary}", findings, {"runs": rows})


def _prometheus_cost(run: dict) -> str:
    """`; Prometheus: 7 queries, 15820 series, 2.3 MiB, 412377 samples` for a run that asked it."""
    if not run.get("prometheus_queries"):
        return ""
    samples = run.get("prometheus_samples_processed")
    return (f"; Prometheus: {run['prometheus_queries']} queries, {run.get('prometheus_series_returned') or 0} series, "
            f"{format_bytes(run.get('prometheus_response_bytes') or 0)}"
            f"{f', {samples} samples' if samples is not None else ''}")
