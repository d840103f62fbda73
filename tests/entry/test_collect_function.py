"""The collect function through the real functions-framework server, as Knative would call it."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.simulator.cluster import SimulatedCluster
from tests.conftest import BACKENDS
from tests.support.servers import function_server

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

PING_SOURCE = "/apis/v1/namespaces/monitoring/pingsources/collect"


@pytest.fixture(scope="module")
def cluster(small_scenario) -> Iterator[SimulatedCluster]:
    with SimulatedCluster(small_scenario) as simulated:
        yield simulated


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("collect-function")


@pytest.fixture(scope="module")
def collect_url(cluster, workdir) -> Iterator[str]:
    env = {
        "DATABASE_PATH": str(workdir / "k8s_metrics.db"),
        "KUBECONFIG": str(cluster.write_kubeconfig(workdir / "kubeconfig")),
        "PROMETHEUS_URL": cluster.prometheus_url,
        "MAX_BODY_BYTES": "4096",
        "LOG_LEVEL": "WARNING",
    }
    with function_server("collect", env, workdir / "collect.log") as url:
        yield url


def run_count(workdir: Path) -> int:
    conn = sqlite3.connect(workdir / "k8s_metrics.db")
    try:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


def ping_headers(event_id: str, event_type: str = "dev.knative.sources.ping") -> dict[str, str]:
    return {"Ce-Specversion": "1.0", "Ce-Type": event_type, "Ce-Source": PING_SOURCE, "Ce-Id": event_id,
            "Content-Type": "application/json"}


def test_binary_ping_event_collects_and_describes_the_run(collect_url, small_scenario):
    answer = requests.post(collect_url, headers=ping_headers(str(uuid.uuid4())), data="{}", timeout=30)
    assert answer.status_code == 200
    run = answer.json()
    assert run["status"] == "ok"
    assert run["trigger"] == "cloudevent"
    assert run["pods"] == len(small_scenario.pods)
    assert run["run_id"] > 0 and run["duration_seconds"] > 0
    assert set(run["timings"]) == {"kubernetes_seconds", "prometheus_seconds", "database_seconds"}


def test_structured_ping_event_collects(collect_url):
    event = {"specversion": "1.0", "type": "dev.knative.sources.ping", "source": PING_SOURCE,
             "id": str(uuid.uuid4()), "datacontenttype": "application/json", "data": {}}
    answer = requests.post(collect_url, data=json.dumps(event),
                           headers={"Content-Type": "application/cloudevents+json"}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_plain_post_with_namespaces(collect_url, small_scenario):
    namespace = sorted(small_scenario.namespaces)[0]
    answer = requests.post(collect_url, json={"namespaces": [namespace]}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["pods"] == sum(1 for p in small_scenario.pods if p.namespace == namespace)


def test_redelivered_event_collects_once(collect_url, workdir):
    event_id = str(uuid.uuid4())
    first = requests.post(collect_url, headers=ping_headers(event_id), data="{}", timeout=30)
    before = run_count(workdir)
    second = requests.post(collect_url, headers=ping_headers(event_id), data="{}", timeout=30)
    assert first.json()["status"] == "ok"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "event_id": event_id, "event_source": PING_SOURCE}
    assert run_count(workdir) == before


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "request body is not valid JSON"),
        ({"data": "[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "must be a JSON object"),
        ({"json": {"namespaces": ["a"], "dry_run": True}}, 400, "dry_run: unknown field"),
        ({"json": {"namespaces": "all"}}, 400, "namespaces: Input should be a valid list"),
        ({"data": "{}", "headers": ping_headers("x-1", "com.example.other")}, 400,
         "unsupported CloudEvent type 'com.example.other'"),
        ({"data": "{}", "headers": {**ping_headers("x-2"), "Ce-Specversion": "9.9"}}, 400, "malformed CloudEvent"),
        ({"json": {"namespaces": ["a" * 60] * 80}}, 413, "larger than the limit of 4096 bytes"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(collect_url, workdir, request_kwargs, status, message):
    before = run_count(workdir)
    answer = requests.post(collect_url, timeout=30, **request_kwargs)
    assert answer.status_code == status
    assert message in answer.json()["error"]
    assert run_count(workdir) == before


def test_get_is_not_a_collection(collect_url, workdir):
    before = run_count(workdir)
    answer = requests.get(collect_url, timeout=30)
    assert answer.status_code == 405
    assert "send POST" in answer.json()["error"]
    assert run_count(workdir) == before
