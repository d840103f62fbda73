"""Each run stores what changes: a sample names its container span, which holds requests, limits and phase
for as long as they stay the same, so a change of request is one new span saying old, new and when."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from msgspec.structs import replace

from shared.sources.inventory import ContainerRecord, Inventory, PodRecord
from shared.store.connection import connect
from shared.store.runs import RunRecord, store_collection
from tests.support.servers import REPO
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

T0 = 1_767_225_600.0
MiB = 2**20

# What the "change impact" question asks of the store: a workload container's requests and limits,
# old and new, and the run each was first seen in.
CHANGES = """
SELECT cs.cpu_request_millicores, cs.memory_limit_bytes, MIN(cs.first_run_id) AS since
FROM container_spans cs JOIN containers c ON c.id = cs.container_id JOIN workloads w ON w.id = c.workload_id
WHERE w.namespace = ? AND w.name = ? AND c.name = ?
GROUP BY cs.cpu_request_millicores, cs.memory_limit_bytes ORDER BY since
"""


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    conn = connect(tmp_path / "db.sqlite")
    yield conn
    conn.close()


def _pod(name: str, cpu_request: int = 250, phase: str = "Running", uid: str | None = None) -> PodRecord:
    container = ContainerRecord("api", cpu_request, 500, 256 * MiB, 512 * MiB, 0, None)
    return PodRecord("shop", name, uid or f"uid-{name}", "node-1", phase, "Burstable", "ReplicaSet", "api-abc",
                     [container], "Deployment", "api")


def _store(conn: sqlite3.Connection, number: int, *pods: PodRecord) -> int:
    at = T0 + number * 300
    return store_collection(conn, RunRecord("schedule", at, at + 1, "ok", pods=len(pods)), Inventory(list(pods), []),
                            {})


def spans(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT p.name, cs.first_run_id, cs.last_run_id, cs.phase, cs.cpu_request_millicores"
                        " FROM container_spans cs JOIN pods p ON p.id = cs.pod_id ORDER BY p.name, cs.id").fetchall()


def test_runs_that_see_the_same_requests_extend_one_span_per_container(conn: sqlite3.Connection) -> None:
    runs = [_store(conn, n, _pod("api-1"), _pod("api-2")) for n in range(4)]

    assert spans(conn) == [("api-1", runs[0], runs[-1], "Running", 250), ("api-2", runs[0], runs[-1], "Running", 250)]
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT span_id) FROM samples").fetchone() == (8, 2)


def test_a_changed_request_or_phase_starts_a_new_span_where_the_old_one_ends(conn: sqlite3.Connection) -> None:
    first = _store(conn, 0, _pod("api-1", phase="Pending"))
    second = _store(conn, 1, _pod("api-1"))
    third = _store(conn, 2, _pod("api-1"))
    resized = _store(conn, 3, _pod("api-1", cpu_request=400))  # an in-place resize: same pod, new request

    assert spans(conn) == [("api-1", first, first, "Pending", 250), ("api-1", second, third, "Running", 250),
                           ("api-1", resized, resized, "Running", 400)]
    named = conn.execute("SELECT s.run_id, cs.phase, cs.cpu_request_millicores FROM samples s"
                         " JOIN container_spans cs ON cs.id = s.span_id ORDER BY s.run_id").fetchall()
    assert named == [(first, "Pending", 250), (second, "Running", 250), (third, "Running", 250),
                     (resized, "Running", 400)]


def test_a_rollout_shows_as_old_and_new_requests_with_the_run_that_brought_them(conn: sqlite3.Connection) -> None:
    before = [_store(conn, n, _pod("api-old-1"), _pod("api-old-2")) for n in range(3)]
    during = _store(conn, 3, _pod("api-old-1"), _pod("api-new-1", cpu_request=600))
    _store(conn, 4, _pod("api-new-1", cpu_request=600), _pod("api-new-2", cpu_request=600))

    assert conn.execute(CHANGES, ("shop", "api", "api")).fetchall() == [(250, 512 * MiB, before[0]),
                                                                      (600, 512 * MiB, during)]
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + CHANGES, ("shop", "api", "api")))
    assert "container_spans_container" in plan  # read from the container's spans, not from the samples


def test_a_pod_seen_again_after_runs_of_other_namespaces_goes_on_in_its_span(conn: sqlite3.Connection) -> None:
    first = _store(conn, 0, _pod("api-1"))
    _store(conn, 1, replace(_pod("db-1"), namespace="data"))  # a run scoped to another namespace
    last = _store(conn, 2, _pod("api-1"))

    assert spans(conn)[0] == ("api-1", first, last, "Running", 250)


def test_a_run_adds_under_45_bytes_per_container_and_no_index_entries(tmp_path: Path) -> None:
    # release 2 added 114 bytes per container of this cluster: the sample row, and an entry in each of two indexes
    conn = connect(tmp_path / "db.sqlite")
    rng, inventory = random.Random(1), synthetic_inventory(3000, nodes=15)
    for number in range(3):  # the first runs add every identity and span
        store_synthetic_run(conn, inventory, T0 + number * 300, rng)
    before = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    for number in range(3, 6):
        store_synthetic_run(conn, inventory, T0 + number * 300, rng)
    after = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    conn.close()

    grown = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert set(grown) <= {"samples", "node_samples", "runs"}, grown  # no index grows with the samples
    assert sum(grown.values()) / 3 / inventory.container_count < 45


def test_the_storage_benchmark_measures_the_code_it_is_given() -> None:
    # what benchmarks/storage.py runs on each side of a comparison (the baseline side on a checkout of it)
    command = [sys.executable, str(REPO / "benchmarks" / "storage.py"), "--code", str(REPO), "--pods", "40",
               "--runs", "4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["containers"] == 60 and measured["write_seconds"] > 0
    assert measured["bytes_per_run"]["samples"] > 0 and "samples_ts" not in measured["bytes_per_run"]
