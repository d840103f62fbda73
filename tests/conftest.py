"""Shared fixtures: a fake clock, a small simulated cluster, and settings pointing at both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.settings import Settings, load_settings
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import Scenario, build_scenario
from tests.support.postgres import PostgresServer, postgres_server

SMALL_PODS = 40


FAKE_CLOCK_START = 1_780_272_000.0  # 2026-06-01T00:00:00Z: every run of the suite sees the same usage


class FakeClock:
    """A clock the test moves by hand; starts at a fixed time, so the scenario's noise is the same
    in every run of the suite."""

    def __init__(self, start: float | None = None):
        self.now = start if start is not None else FAKE_CLOCK_START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def small_scenario() -> Scenario:
    return build_scenario(SMALL_PODS, seed=7)


@pytest.fixture
def cluster(small_scenario: Scenario, clock: FakeClock) -> Iterator[SimulatedCluster]:
    """A simulated Kubernetes and Prometheus API on loopback, fresh for each test."""
    with SimulatedCluster(small_scenario, clock=clock) as simulated:
        yield simulated


def make_settings(tmp_path: Path, cluster: SimulatedCluster | None = None, **overrides: object) -> Settings:
    """Settings isolated from the machine's environment: a temporary database and the simulator."""
    values: dict[str, object] = {
        "database_path": tmp_path / "data" / "k8s_metrics.db",
        "backup_dir": tmp_path / "backups",
        "kube_context": None,
        "namespaces_include": (),
        "namespaces_exclude": (),
        "kube_timeout_seconds": 3.0,
        "prometheus_timeout_seconds": 3.0,
        "log_format": "json",
        "slack_webhook_url": None,
        "webhook_url": None,
        "smtp_host": None,
        "k_sink": None,
        "pod_name": "",
        "pod_namespace": "",
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    if cluster is not None:
        values["kubeconfig"] = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        values["prometheus_url"] = cluster.prometheus_url
    else:
        values["kubeconfig"] = tmp_path / "missing-kubeconfig"
        values["prometheus_url"] = "http://127.0.0.1:9"
    values.update(_current_backend)
    values.update(overrides)
    return load_settings(**values)


_current_backend: dict[str, object] = {}  # the running test's `backend`: make_settings uses it too


BACKENDS = ("sqlite", "postgresql")
"""Parametrize a test or module with `pytest.mark.parametrize("backend", BACKENDS, indirect=True)` to run
it on both stores; unparametrized, `backend` is SQLite."""


@pytest.fixture(scope="session")
def postgres_server_for_tests() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session, started by the first test that asks for it."""
    with postgres_server() as server:
        yield server


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """Settings overrides naming the store: none for SQLite (DATABASE_PATH under tmp_path), or DATABASE_URL
    of a fresh database on the session's PostgreSQL, dropped after the test."""
    name = getattr(request, "param", "sqlite")
    if name == "sqlite":
        yield {}
        return
    only = request.node.get_closest_marker("sqlite_only")
    if only is not None:
        pytest.skip(f"SQLite only: {only.args[0]}")
    server: PostgresServer = request.getfixturevalue("postgres_server_for_tests")
    database = server.create_database()
    _current_backend["database_url"] = server.url(database)
    try:
        yield dict(_current_backend)
    finally:
        _current_backend.clear()
        server.drop_database(database)


@pytest.fixture
def settings(tmp_path: Path, cluster: SimulatedCluster, backend: dict[str, object]) -> Settings:
    return make_settings(tmp_path, cluster, **backend)


@pytest.fixture(scope="session")
def backfilled_prometheus(
    small_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, float]]:
    """A real Prometheus holding two hours of the small scenario's cAdvisor series; (url, end time).

    Installed from Debian by `make test`; a missing binary fails the tests that need it.
    """
    from shared.simulator.openmetrics import write_openmetrics
    from tests.support.servers import real_prometheus

    end = int(time.time()) // 300 * 300  # recent: Prometheus drops blocks beyond its retention at start
    workdir = tmp_path_factory.mktemp("backfill")
    data = write_openmetrics(small_scenario, workdir / "cadvisor.om", end - 2 * 3600, end)
    with real_prometheus(data) as url:
        yield url, float(end)
