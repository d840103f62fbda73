"""`k8s-monitor health` as an operator runs it in a shell: the report, and an exit code for scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.core.database_url import PostgresTarget
from shared.core.settings import Settings
from shared.store.connection import SCHEMA_VERSION
from shared.store.postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from tests.conftest import BACKENDS, FakeClock, make_settings
from tests.support.functions import collect_now, health_env, k8s_monitor


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_health_prints_one_line_per_component_and_exits_zero_when_healthy(
        settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)
    done = k8s_monitor(["health"], health_env(settings))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("k8s-resource-monitor ") and ": HEALTHY at " in lines[0]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["database", "healthy"], ["kubernetes", "healthy"], ["prometheus", "healthy"], ["collection", "healthy"]]
    target = settings.database
    database, version = ((target.shown, len(POSTGRES_MIGRATIONS)) if isinstance(target, PostgresTarget)
                         else (str(settings.database_path), SCHEMA_VERSION))
    assert f"{database}, " in lines[1] and f"schema {version}," in lines[1] and "no backup yet" in lines[1]
    assert "last run ok" in lines[4]


def test_health_json_is_the_endpoint_report_and_unhealthy_exits_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    done = k8s_monitor(["health", "--json"], health_env(settings))

    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["status"], report["database_status"]) == ("unhealthy", "unhealthy")
    assert {"timestamp", "kubernetes_status", "prometheus_status", "version", "checks"} <= set(report)


def test_degraded_exits_zero_and_says_what_to_fix(settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)
    done = k8s_monitor(["health"], health_env(settings, PROMETHEUS_URL="http://127.0.0.1:9"))

    assert done.returncode == 0
    assert ": DEGRADED at " in done.stdout
    assert "Prometheus at http://127.0.0.1:9 unreachable" in done.stdout


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1) for a private read-only mount")
def test_a_read_only_data_volume_is_unhealthy(settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)  # the collector closed the file: no -shm index is left beside it
    data = str(settings.database_path.parent)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare not permitted here: {probe.stderr.decode().strip()}")
    script = f'mount --bind "{data}" "{data}" && mount -o remount,bind,ro "{data}" && exec "$@"'
    done = k8s_monitor(["health", "--json"], health_env(settings), wrap=["unshare", "-rm", "sh", "-c", script, "sh"])

    assert done.returncode == 1, done.stderr
    database = json.loads(done.stdout)["checks"]["database"]
    assert database["status"] == "unhealthy"
    assert "mounted read-only here" in database["error"]
