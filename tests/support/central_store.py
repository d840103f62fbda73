"""What the central-store tests share: a cluster's history held four times over, and the figures a run stored.

A central Prometheus (Thanos, Mimir, VictoriaMetrics) holds this cluster and another under a
`cluster` label, and here cAdvisor is scraped by two jobs as well: every container has four
series, with the same samples. A run must store what one copy says.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

CLUSTER, OTHER_CLUSTER = "prod-eu", "staging"
COPIES = tuple({"cluster": cluster, "job": job}
               for cluster in (CLUSTER, OTHER_CLUSTER) for job in ("kubelet", "cadvisor"))
ONE_COPY = {"cluster_name": CLUSTER, "prometheus_cluster_label": "cluster", "prometheus_selector": 'job="kubelet"'}
HISTORY_SECONDS = 1800  # enough for every query's window; promtool's time grows with it

FIGURES = ("cpu_usage_avg_millicores", "cpu_usage_max_millicores", "memory_working_set_avg_bytes",
           "memory_working_set_max_bytes", "cpu_throttled_ratio", "oom_events")


def stored_figures(database: Path) -> dict[tuple[str, str, str], tuple]:
    """(namespace, pod, container) -> the usage figures of the only run in `database`, in FIGURES order."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            f"""SELECT w.namespace, p.name, c.name, {', '.join(f's.{name}' for name in FIGURES)}
                FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN pods p ON p.id = cs.pod_id
                JOIN containers c ON c.id = cs.container_id
                JOIN workloads w ON w.id = c.workload_id""").fetchall()
    finally:
        conn.close()
    return {(ns, pod, container): tuple(figures) for ns, pod, container, *figures in rows}
