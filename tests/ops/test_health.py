"""The health function as a prober and an operator meet it: over HTTP, through functions-framework."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared import __version__
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.health import DEGRADED, HEALTHY, check_health, check_readiness
from shared.simulator.cluster import SimulatedCluster
from shared.store.connection import SCHEMA_VERSION, open_store
from shared.store.postgres_schema import MIGRATIONS
from tests.conftest import BACKENDS, FakeClock, make_settings
from tests.support.functions import collect_now, get, health_env, post
from tests.support.servers import REPO, free_port, function_server

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


POSTGRES_SCHEMA_VERSION = len(MIGRATIONS)


def test_a_collected_cluster_is_healthy_with_the_details_an_operator_reads(
        settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock, runs=2)
    with function_server("health", health_env(settings)) as url:
        response = get(f"{url}/health")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "database_status", "kubernetes_status", "prometheus_status",
                                       "collection_status")} == {
        "status": "healthy", "database_status": "healthy", "kubernetes_status": "healthy",
        "prometheus_status": "healthy", "collection_status": "healthy"}
    assert body["timestamp"].endswith("Z")
    assert body["version"] == __version__
    assert body["schema_version"] == body["expected_schema_version"] == (
        POSTGRES_SCHEMA_VERSION if settings.database_url else SCHEMA_VERSION)
    assert body["database_size_bytes"] >= (100_000 if settings.database_url else settings.database_path.stat().st_size)
    assert body["last_run_status"] == "ok"
    assert 0 <= body["last_successful_collection_age_seconds"] < settings.collect_interval_seconds
    checks = body["checks"]
    for name in ("database", "kubernetes", "prometheus"):
        assert isinstance(checks[name]["latency_seconds"], float)
        assert "error" not in checks[name]
    assert checks["prometheus"]["missing_metrics"] == []
    assert checks["kubernetes"]["asked_with"] == "selfsubjectaccessreview"


class StepTimer:
    """A monotonic clock that moves `step_seconds` at each reading, counted per thread: each check
    runs in its own thread and reads its start and its end."""

    def __init__(self, step_seconds: float):
        self.step_seconds = step_seconds
        self._readings = threading.local()

    def __call__(self) -> float:
        taken = getattr(self._readings, "count", 0)
        self._readings.count = taken + 1
        return 1000.0 + taken * self.step_seconds


def test_each_check_reports_the_seconds_it_took(settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)

    report = check_health(settings, now=clock(), timer=StepTimer(0.125))

    assert {name: check.latency_seconds for name, check in report.checks.items()} == {
        "database": 0.125, "kubernetes": 0.125, "prometheus": 0.125, "collection": None}
    assert report.as_dict()["checks"]["prometheus"]["latency_seconds"] == 0.125


@pytest.mark.sqlite_only("a SQLite file (tests/store/test_postgres.py has the server's faults)")
def test_without_a_database_liveness_answers_and_the_rest_is_unhealthy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no database, no cluster, Prometheus on a closed port
    with function_server("health", health_env(settings)) as url:
        liveness, readiness = get(f"{url}/health/liveness"), get(f"{url}/health/readiness")
        health = get(f"{url}/health")

    assert (liveness.status_code, liveness.json()) == (200, {"status": "alive"})
    assert readiness.status_code == 503
    assert readiness.json()["status"] == "not ready"
    assert "does not exist yet (DATABASE_PATH)" in readiness.json()["error"]
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == body["database_status"] == "unhealthy"
    assert "does not exist yet" in body["checks"]["database"]["error"]
    assert body["collection_status"] == "unknown"


def test_readiness_turns_ready_once_a_collection_created_the_database(settings: Settings, clock: FakeClock) -> None:
    with function_server("health", health_env(settings)) as url:
        before = get(f"{url}/health/readiness")
        collect_now(settings, clock)
        after = get(f"{url}/health/readiness")

    assert before.status_code == 503
    assert (after.status_code, after.json()["status"], after.json()["schema_version"]) == (
        200, "ready", POSTGRES_SCHEMA_VERSION if settings.database_url else SCHEMA_VERSION)


@pytest.mark.sqlite_only("a SQLite file (tests/store/test_postgres.py has the server's faults)")
def test_a_corrupt_database_is_unhealthy_and_metrics_still_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"this is not an SQLite database\n" * 200)
    with function_server("health", health_env(settings)) as url:
        health, readiness, metrics = get(f"{url}/health"), get(f"{url}/health/readiness"), get(f"{url}/metrics")

    assert health.status_code == 503
    assert health.json()["database_status"] == "unhealthy"
    assert "file is not a database" in health.json()["checks"]["database"]["error"]
    assert readiness.status_code == 503
    assert metrics.status_code == 200
    assert 'database_readable{cluster="default"} 0.0' in metrics.text


def test_prometheus_down_is_degraded_not_unhealthy(settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)
    with function_server("health", health_env(settings, PROMETHEUS_URL=closed_port_url())) as url:
        response = get(f"{url}/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["prometheus_status"], body["database_status"]) == ("degraded", "degraded", "healthy")
    assert "unreachable" in body["checks"]["prometheus"]["error"]


def test_kubernetes_forbidden_is_degraded_and_names_the_permission(
        settings: Settings, clock: FakeClock, cluster: SimulatedCluster) -> None:
    collect_now(settings, clock)
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset({"pods"})))
    with function_server("health", health_env(settings)) as url:
        response = get(f"{url}/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["kubernetes_status"]) == ("degraded", "degraded")
    assert "missing RBAC permission: verb 'list' on resource 'pods'" in body["checks"]["kubernetes"]["error"]


def test_where_access_reviews_are_refused_listing_one_pod_asks_instead(
        settings: Settings, cluster: SimulatedCluster) -> None:
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset({"selfsubjectaccessreviews"})))
    allowed = check_health(settings).checks["kubernetes"]
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset({"selfsubjectaccessreviews", "pods"})))
    forbidden = check_health(settings).checks["kubernetes"]

    assert (allowed.status, allowed.details["asked_with"]) == ("healthy", "list pods")
    assert forbidden.status == "degraded"
    assert "missing RBAC permission: verb 'list' on resource 'pods'" in (forbidden.error or "")


@contextmanager
def unanswering_server(trickle: bool) -> Iterator[str]:
    """A raw socket server that accepts connections and never answers them.

    With `trickle`, it sends the headers of an answer and then one body byte every 0.1 s, so a
    client's per-read timeout never fires: only a timeout on the whole check can end the wait.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def feed(conn: socket.socket) -> None:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            while not stop.wait(0.1):
                conn.sendall(b" ")
        except OSError:
            pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(conn)
            if trickle:
                threading.Thread(target=feed, args=(conn,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        server.join()
        for conn in connections:
            conn.close()
        listener.close()


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "hung",
        "clusters": [{"name": "hung", "cluster": {"server": server}}],
        "users": [{"name": "hung", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "hung", "context": {"cluster": "hung", "user": "hung"}}],
    }))
    return path


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_a_dependency_that_never_answers_is_cut_off_by_the_check_timeout(tmp_path: Path, trickle: bool) -> None:
    settings = make_settings(tmp_path)
    open_store(settings).close()
    with unanswering_server(trickle) as hung:
        env = health_env(settings, PROMETHEUS_URL=hung, HEALTH_CHECK_TIMEOUT_SECONDS="0.5",
                         KUBECONFIG=str(write_kubeconfig(tmp_path / "kubeconfig", hung)))
        with function_server("health", env) as url:
            response = get(f"{url}/health")  # would wait for minutes without the cut-off

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database_status"]) == ("degraded", "healthy")
    for name in ("kubernetes", "prometheus"):
        check = body["checks"][name]
        assert check["status"] == "degraded"
        if trickle:  # the client's own read timeout cannot fire: only the check's timeout ends it
            assert "no answer within 0.5s (HEALTH_CHECK_TIMEOUT_SECONDS)" in check["error"]
        else:
            assert "0.5s" in check["error"]


def test_collection_is_stale_after_the_configured_number_of_intervals(
        settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)
    conn = open_store(settings, readonly=True)
    (finished,) = conn.execute("SELECT max(finished_at) FROM runs WHERE status = 'ok'").fetchone()
    conn.close()
    stale_after = settings.alert_stale_intervals * settings.collect_interval_seconds

    fresh = check_health(settings, now=finished + stale_after)
    stale = check_health(settings, now=finished + stale_after + 60)

    assert (fresh.status, fresh.checks["collection"].status) == ("healthy", "healthy")
    assert (stale.status, stale.checks["collection"].status, stale.http_status) == ("degraded", "degraded", 200)
    assert "more than 3 collection intervals" in (stale.checks["collection"].error or "")
    assert stale.as_dict()["last_successful_collection_age_seconds"] == stale_after + 60


def test_a_failed_last_run_is_reported_with_its_reason(
        settings: Settings, clock: FakeClock, cluster: SimulatedCluster) -> None:
    collect_now(settings, clock)
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset({"pods"})))
    collect_once(settings, Trigger("cli"), clock=clock)

    body = check_health(settings, now=clock()).as_dict()
    assert (body["last_run_status"], body["collection_status"]) == ("failed", "healthy")  # not stale yet
    assert "verb 'list' on resource 'pods'" in body["checks"]["collection"]["last_run_error"]


@pytest.mark.sqlite_only("a SQLite file (tests/store/test_postgres.py has the server's faults)")
def test_an_outdated_schema_is_not_ready(settings: Settings, clock: FakeClock) -> None:
    collect_now(settings, clock)
    conn = open_store(settings)
    conn.execute("PRAGMA user_version = 0")
    conn.close()

    readiness = check_readiness(settings)
    assert readiness.status == "unhealthy"
    assert f"schema version 0, expected {SCHEMA_VERSION}" in (readiness.error or "")
    assert check_health(settings).status == "unhealthy"


def test_unknown_paths_and_methods_get_a_clear_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with function_server("health", health_env(settings)) as url:
        unknown = get(f"{url}/healthz")
        refused = post(f"{url}/health")

    assert unknown.status_code == 404
    assert "/health/liveness" in unknown.json()["error"]
    assert refused.status_code == 405


def test_the_health_function_starts_without_the_kubernetes_client_or_requests(tmp_path: Path) -> None:
    """Cold start after scale-to-zero pays for every import: the heavy clients load only when checked."""
    load = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('main', sys.argv[1]);"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec));"
            "print(sorted(m for m in ('shared.sources.kube', 'shared.sources.kube_credentials', 'requests', 'urllib3')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", load, "functions/health/main.py"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO),
                                                      "DATABASE_PATH": str(tmp_path / "k8s_metrics.db")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_missing_optional_metrics_leave_prometheus_healthy_with_a_note(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, metric_cpu_throttled_periods="container_cpu_cfs_throttled_gone",
                             metric_oom_events="container_oom_events_gone")

    check = check_health(settings, now=clock()).checks["prometheus"]

    assert check.status == HEALTHY and check.error is None
    assert check.details["missing_metrics"] == []
    assert check.details["missing_optional_metrics"] == [
        "container_cpu_cfs_throttled_gone", "container_oom_events_gone"]
    assert check.details["notes"] == [
        "no series of the optional container_cpu_cfs_throttled_gone, container_oom_events_gone: CPU throttling and "
        "OOM events stay empty; older kubelets and some relabelling setups drop them"]


@pytest.mark.parametrize("variable", ["metric_cpu_usage", "metric_memory_working_set"])
def test_a_missing_cpu_usage_or_working_set_metric_makes_prometheus_degraded(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock, variable: str) -> None:
    settings = make_settings(tmp_path, cluster, **{variable: "renamed_by_relabelling"})

    check = check_health(settings, now=clock()).checks["prometheus"]

    assert check.status == DEGRADED
    assert check.details["missing_metrics"] == ["renamed_by_relabelling"]
    assert (f"has no series of renamed_by_relabelling in the last hour: usage stays empty; check that "
            f"cAdvisor/kubelet metrics are scraped, or set {variable.upper()} to the names your setup uses") in (
        check.error or "")
