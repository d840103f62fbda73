"""The backup function through the real functions-framework server, as Knative's PingSource calls it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.ops.backup import last_backup, verify_checksum
from shared.store.connection import connect
from tests.support.servers import function_server
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

PING_SOURCE = "/apis/v1/namespaces/monitoring/pingsources/backup"


@pytest.fixture(scope="module")
def backup_service(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """The server with a database of a few runs; yields its URL, the database and BACKUP_DIR."""
    root = tmp_path_factory.mktemp("backup-function")
    database, backup_dir = root / "data" / "k8s_metrics.db", root / "backups"
    conn = connect(database)
    rng, inventory = random.Random(5), synthetic_inventory(10)
    for number in range(3):
        store_synthetic_run(conn, inventory, 1_700_000_000 + number * 300, rng)
    conn.close()
    env = {"DATABASE_PATH": str(database), "BACKUP_DIR": str(backup_dir), "LOG_FORMAT": "json"}
    with function_server("backup", env, log_path=root / "server.log") as url:
        yield url, database, backup_dir


def binary_ping(url: str, event_id: str, event_type: str = "dev.knative.sources.ping") -> requests.Response:
    headers = {"ce-specversion": "1.0", "ce-type": event_type, "ce-source": PING_SOURCE, "ce-id": event_id,
               "ce-time": "2024-01-01T02:00:00Z"}
    return requests.post(url, headers=headers, timeout=30)


def backups_in(backup_dir: Path) -> set[str]:
    return {path.name for path in backup_dir.glob("k8s_metrics_*.db.gz")}


def test_a_binary_ping_event_makes_a_verified_backup(backup_service):
    url, database, backup_dir = backup_service

    answer = binary_ping(url, "tick-binary")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["event_id"] == "tick-binary"
    assert body["file"] in backups_in(backup_dir)
    assert verify_checksum(backup_dir / body["file"]) == "ok"
    assert body["size_bytes"] == (backup_dir / body["file"]).stat().st_size
    conn = connect(database, readonly=True)
    try:
        recorded = last_backup(conn)
    finally:
        conn.close()
    assert recorded is not None and (recorded.file, recorded.sha256) == (body["file"], body["sha256"])
    assert body["duration_seconds"] == round(recorded.finished_at - recorded.started_at, 3)


def test_a_structured_ping_event_makes_a_backup(backup_service):
    url, _, backup_dir = backup_service
    event = {"specversion": "1.0", "type": "dev.knative.sources.ping", "source": PING_SOURCE,
             "id": "tick-structured", "datacontenttype": "application/json", "data": {}}

    answer = requests.post(url, data=json.dumps(event), timeout=30,
                           headers={"Content-Type": "application/cloudevents+json"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"
    assert answer.json()["file"] in backups_in(backup_dir)


def test_a_redelivered_event_does_not_back_up_twice(backup_service):
    url, database, backup_dir = backup_service
    first = binary_ping(url, "tick-redelivered")
    before = backups_in(backup_dir)

    again = binary_ping(url, "tick-redelivered")

    assert first.json()["status"] == "ok"
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert backups_in(backup_dir) == before
    conn = connect(database)
    recorded = conn.execute("SELECT outcome FROM processed_events WHERE function = 'backup' AND event_id = ?",
                            ("tick-redelivered",)).fetchall()
    conn.close()
    assert recorded == [("ok",)]


def test_a_plain_post_makes_a_backup(backup_service):
    url, _, backup_dir = backup_service

    answer = requests.post(url, json={}, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["file"] in backups_in(backup_dir)


@pytest.mark.parametrize("send, message", [
    (lambda url: binary_ping(url, "tick-wrong-type", "dev.example.other"), "unsupported CloudEvent type"),
    (lambda url: requests.post(url, data=b"{not json", timeout=10,
                               headers={"Content-Type": "application/json"}), "not valid JSON"),
    (lambda url: requests.post(url, json=[1, 2], timeout=10), "must be a JSON object"),
    (lambda url: requests.post(url, json={"retention_days": 1}, timeout=10), "unknown field(s): retention_days"),
    (lambda url: requests.post(url, data=b'{"specversion": "1.0"}', timeout=10,
                               headers={"Content-Type": "application/cloudevents+json"}), "malformed CloudEvent"),
])
def test_bad_input_is_a_400_that_backs_nothing_up(backup_service, send, message):
    url, _, backup_dir = backup_service
    before = backups_in(backup_dir)

    answer = send(url)

    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]
    assert backups_in(backup_dir) == before


def test_get_is_not_allowed(backup_service):
    url, _, _ = backup_service

    answer = requests.get(url, timeout=10)

    assert answer.status_code == 405
    assert "send POST" in answer.json()["error"]
