"""`k8s-monitor serve`: every function in one process, collecting on its own schedule."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import requests

from shared.entry.schedule import next_daily
from tests.support.servers import REPO, free_port, wait_until_up


def test_next_daily_is_the_coming_occurrence_of_the_hour():
    at = datetime(2026, 11, 24, 1, 59, tzinfo=UTC).timestamp()
    assert next_daily(at, 2) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()
    assert next_daily(at, 2) == datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()


def test_serve_runs_every_function_and_collects_on_schedule(tmp_path, cluster, small_scenario):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_PATH": str(tmp_path / "k8s_metrics.db"),
           "BACKUP_DIR": str(tmp_path / "backups"), "KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kc")),
           "PROMETHEUS_URL": cluster.prometheus_url, "LOG_LEVEL": "WARNING", "POD_NAMESPACE": ""}
    env.pop("KUBE_CONTEXT", None)
    process = subprocess.Popen([sys.executable, "-m", "shared", "serve", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health/liveness", process)
        deadline = time.monotonic() + 30
        runs = 0
        while runs == 0 and time.monotonic() < deadline:  # the schedule's first collection starts at once
            time.sleep(0.2)
            if (tmp_path / "k8s_metrics.db").exists():
                conn = sqlite3.connect(tmp_path / "k8s_metrics.db")
                try:
                    runs = conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
                except sqlite3.OperationalError:
                    runs = 0
                finally:
                    conn.close()
        assert runs == 1
        headers = {"Connection": "close"}
        assert requests.get(f"{base}/health/liveness", headers=headers, timeout=10).json() == {"status": "alive"}
        collected = requests.post(f"{base}/collect", json={}, headers=headers, timeout=30)
        assert collected.status_code == 200 and collected.json()["pods"] == len(small_scenario.pods)
        report = requests.get(f"{base}/report", headers=headers, timeout=30)
        assert report.status_code == 200 and report.json()["workloads"]
        assert "pods_collected_total" in requests.get(f"{base}/metrics", headers=headers, timeout=10).text
        health = requests.get(f"{base}/health", headers=headers, timeout=30).json()
        assert health["database_status"] == "healthy"
    finally:
        process.terminate()
        process.wait(10)
