"""`k8s-monitor demo`: what a newcomer sees first."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.support.servers import REPO


@pytest.mark.parametrize("database_url", [None, "postgresql://monitor@127.0.0.1:9/k8s"], ids=["plain", "with-url"])
def test_demo_collects_several_runs_and_summarizes_them(tmp_path, database_url):
    """The demo stays on its SQLite file, even where DATABASE_URL names a PostgreSQL server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KUBE", "PROMETHEUS_", "SLACK_"))}
    env["PYTHONPATH"] = str(REPO)
    if database_url:
        env["DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "shared", "demo", "--pods", "40", "--runs", "3"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[3/3] run 3 ok: 40 pods" in out
    assert "Most over-provisioned (idle requested CPU):" in out and "Most under-provisioned" in out
    assert "of requests)" in out
    conn = sqlite3.connect(tmp_path / "data" / "k8s_metrics.db")
    statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    spread = conn.execute("SELECT max(started_at) - min(started_at) FROM runs").fetchone()[0]
    conn.close()
    assert statuses == ["ok", "ok", "ok"]
    assert spread == 600  # the clock advanced one 300 s interval per run
    assert done.stderr == ""  # the demo is quiet unless something is wrong


def test_demo_refuses_a_cluster_too_small_naming_the_option(tmp_path):
    done = subprocess.run([sys.executable, "-m", "shared", "demo", "--pods", "5"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "argument --pods: must be at least 10, got 5" in done.stderr and "Traceback" not in done.stderr


def test_demo_refuses_a_database_with_a_real_clusters_history(tmp_path, settings):
    from shared.domain.trigger import Trigger
    from shared.entry.collect import collect_once

    collect_once(settings, Trigger("cli"))  # a real collection into this database
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_PATH": str(settings.database_path)}
    done = subprocess.run([sys.executable, "-m", "shared", "demo", "--pods", "20", "--runs", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "holds 1 runs of a real cluster" in done.stderr and "DATABASE_PATH" in done.stderr


def test_after_the_demo_the_report_gives_the_averages_of_the_stored_runs_now_and_an_hour_later(
        tmp_path, monkeypatch, capsys):
    from shared.cli import main as cli_main

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KUBE", "PROMETHEUS_", "SLACK_"))}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "shared", "demo", "--pods", "40", "--runs", "4"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    database = tmp_path / "data" / "k8s_metrics.db"
    conn = sqlite3.connect(database)
    # What every stored run says the cluster requested and used (usage of Running containers), and
    # the window each run covers
    runs = conn.execute(
        "SELECT r.window_seconds, SUM(cs.cpu_request_millicores), SUM(s.cpu_usage_avg_millicores),"
        " SUM(cs.memory_request_bytes), SUM(s.memory_working_set_avg_bytes) FROM runs r JOIN samples s"
        " ON s.run_id = r.id JOIN container_spans cs ON cs.id = s.span_id"
        " WHERE cs.phase = 'Running' AND s.cpu_usage_avg_millicores IS NOT NULL GROUP BY r.id").fetchall()
    last = conn.execute("SELECT MAX(started_at) FROM runs").fetchone()[0]
    conn.close()
    assert len(runs) == 4 and len({run[1] for run in runs}) == 1  # a static cluster: the same requests at every run
    covered = sum(run[0] for run in runs)
    cpu_used = sum(run[0] * run[2] for run in runs) / covered
    memory_used = sum(run[0] * run[4] for run in runs) / covered

    monkeypatch.setenv("DATABASE_PATH", str(database))
    for later in (1, 3600):  # now, and an hour after the last collection
        monkeypatch.setattr("time.time", lambda later=later: last + later)
        assert cli_main(["report", "--format", "json"]) == 0
        cluster = json.loads(capsys.readouterr().out)["cluster"]
        assert cluster["cpu_requested_millicores"] == pytest.approx(runs[0][1], abs=0.1), later
        assert cluster["memory_requested_bytes"] == pytest.approx(runs[0][3], abs=1), later
        assert cluster["cpu_used_millicores"] == pytest.approx(cpu_used, abs=0.1), later
        assert cluster["memory_used_bytes"] == pytest.approx(memory_used, abs=1), later
