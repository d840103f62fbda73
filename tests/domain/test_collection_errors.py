"""Errors around a run: each ends as a clear answer, with nothing stored half way and retries possible."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from shared.cli import main
from shared.domain import collection as collector
from shared.domain.collection import parse_collect_request
from shared.domain.errors import InvalidInput
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.store.connection import StoreError, connect, transaction
from tests.conftest import make_settings

PING = ("/apis/v1/namespaces/monitoring/pingsources/collect", "dev.knative.sources.ping")


def ping(event_id: str) -> Trigger:
    return Trigger("cloudevent", {}, PING[0], event_id, PING[1])


def test_a_full_disk_keeps_sqlites_own_error(tmp_path):
    conn = connect(tmp_path / "k8s_metrics.db")
    conn.execute("PRAGMA max_page_count = 40")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"), transaction(conn):
        conn.executemany("INSERT INTO nodes (name) VALUES (?)", [(f"node-{i:06d}" * 20,) for i in range(5000)])
    assert conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 0
    conn.close()


def sqlite_error(tmp_path: Path, statements: list[str], failing: str) -> sqlite3.Error:
    """The error SQLite itself raises for `failing` after `statements` (with its error code), not a made-up one."""
    holder = sqlite3.connect(tmp_path / "scratch.db", isolation_level=None)
    other = sqlite3.connect(tmp_path / "scratch.db", isolation_level=None, timeout=0)
    try:
        for statement in statements:
            holder.execute(statement)
        try:
            other.execute(failing)
        except sqlite3.Error as exc:
            return exc
        raise AssertionError(f"{failing} did not fail")
    finally:
        holder.close()
        other.close()


def test_a_write_that_finds_the_database_busy_is_a_failed_run_and_the_event_can_be_retried(
        settings, monkeypatch, tmp_path):
    busy = sqlite_error(tmp_path, ["BEGIN IMMEDIATE"], "BEGIN IMMEDIATE")  # another writer holds the lock
    assert busy.sqlite_errorcode == sqlite3.SQLITE_BUSY

    def locked(*args, **kwargs):
        raise busy

    monkeypatch.setattr(collector, "store_collection", locked)
    body, status = collect_once(settings, ping("tick-9"))
    assert (body["status"], status) == ("failed", 503)
    assert body["error"] == "database: database is locked"
    monkeypatch.undo()
    again, status = collect_once(settings, ping("tick-9"))  # the sender's retry is not a duplicate
    assert (again["status"], status) == ("ok", 200)


def test_a_failed_write_is_told_busy_by_its_error_code_not_its_words(settings, monkeypatch, tmp_path):
    refused = sqlite_error(tmp_path, ["CREATE TABLE busy (locked TEXT UNIQUE)", "INSERT INTO busy VALUES ('x')"],
                           "INSERT INTO busy VALUES ('x')")
    assert str(refused) == "UNIQUE constraint failed: busy.locked"  # says "busy" and "locked", is neither

    def constraint(*args, **kwargs):
        raise refused

    monkeypatch.setattr(collector, "store_collection", constraint)
    body, status = collect_once(settings, ping("tick-11"))
    assert (body["status"], status) == ("failed", 500)  # a retry would fail the same way


def test_an_unexpected_error_releases_the_event_for_the_retry(settings, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("shared.entry.collect.run_collection", broken)
    with pytest.raises(RuntimeError):
        collect_once(settings, ping("tick-10"))
    monkeypatch.undo()
    body, _ = collect_once(settings, ping("tick-10"))
    assert body["status"] == "ok"


def test_an_unreadable_quantity_fails_the_run_naming_the_pod(tmp_path, cluster):
    settings = make_settings(tmp_path, cluster)
    page = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": [{
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"},
        "spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "two"}}}]},
        "status": {"phase": "Running"}}]}
    cluster.kube.inject("/api/v1/pods", 200, body=json.dumps(page).encode())
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("failed", 500)
    assert ("pod shop/web-1 has a resource quantity that cannot be read: not a Kubernetes quantity: 'two'"
            in body["error"])


def test_a_request_may_narrow_namespaces_include_but_not_widen_it(tmp_path, cluster, small_scenario):
    allowed = sorted(small_scenario.namespaces)[:2]
    settings = make_settings(tmp_path, cluster, namespaces_include=tuple(allowed))
    body, _ = collect_once(settings, Trigger("http"), parse_collect_request({"namespaces": allowed[:1]}))
    assert body["pods"] == sum(1 for p in small_scenario.pods if p.namespace == allowed[0])
    outside = sorted(small_scenario.namespaces)[-1]
    with pytest.raises(InvalidInput, match=f"namespace\\(s\\) {outside} are outside NAMESPACES_INCLUDE"):
        collect_once(settings, Trigger("http"), parse_collect_request({"namespaces": [outside]}))


def test_the_run_records_its_namespace_scope(settings, small_scenario):
    wanted = sorted(small_scenario.namespaces)[:2]
    collect_once(settings, Trigger("http"), parse_collect_request({"namespaces": wanted}))
    collect_once(settings, Trigger("cli"))
    conn = sqlite3.connect(settings.database_path)
    scopes = [row[0] for row in conn.execute("SELECT namespaces FROM runs ORDER BY id")]
    conn.close()
    assert scopes == [",".join(wanted), None]


@pytest.mark.parametrize(
    ("path", "message"),
    [(Path("/proc/no-such-dir/k8s_metrics.db"), "cannot create the folder of database"),
     (Path("/"), r"is not a file \(DATABASE_PATH\)")],
)
def test_an_unusable_database_path_is_named(path, message):
    with pytest.raises(StoreError, match=message):
        connect(path)


def test_migrate_refuses_a_database_that_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "missing.db"))
    assert main(["migrate"]) == 1
    assert "does not exist (DATABASE_PATH); nothing to migrate" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_credentials_that_cannot_be_loaded_are_a_kube_credentials_error_and_fail_the_run(tmp_path):
    from shared.sources.kube_credentials import KubeCredentialsError, load_credentials

    settings = make_settings(tmp_path)  # KUBECONFIG names a file that does not exist
    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings)
    assert str(refused.value).startswith(
        f"cannot load Kubernetes credentials (KUBECONFIG={settings.kubeconfig}, KUBE_CONTEXT=current): ")
    body, status = collect_once(settings, Trigger("cli"))
    assert (body["status"], status) == ("failed", 500)
    assert body["error"].startswith("Kubernetes: cannot load Kubernetes credentials")
