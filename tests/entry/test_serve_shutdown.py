"""`k8s-monitor serve` stops cleanly on SIGTERM: a collection in progress is finished, not lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.support.servers import REPO, free_port


def test_sigterm_lets_the_collection_in_progress_finish_and_exits_zero(tmp_path, cluster, small_scenario):
    cluster.kube.inject("/api/v1/pods", 200, times=1, delay_seconds=2.0)  # the first collection is slow
    database = tmp_path / "k8s_metrics.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_PATH": str(database),
           "BACKUP_DIR": str(tmp_path / "backups"), "KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kc")),
           "PROMETHEUS_URL": cluster.prometheus_url, "POD_NAMESPACE": "", "LOG_FORMAT": "json"}
    env.pop("KUBE_CONTEXT", None)
    process = subprocess.Popen([sys.executable, "-m", "shared", "serve", "--port", str(free_port())], env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not any(r.resource == "pods" for r in cluster.kube.requests):  # the schedule's first run is under way
            assert process.poll() is None and time.monotonic() < deadline, "serve never listed pods"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    conn = sqlite3.connect(database)
    try:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs")]
    finally:
        conn.close()
    assert statuses == ["ok"], "the collection under way when SIGTERM came was stored"
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["level"] for line in lines), "serve logs JSON lines on stdout"
    assert any("Shutting down" in json.loads(line)["message"] for line in lines), "gunicorn's own lines are JSON too"
