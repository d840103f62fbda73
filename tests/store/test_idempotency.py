"""A delivery killed mid-way leaves its claim `running`; the sender's retry must still get the work
done once the claim is stale, for every function that dedupes events."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudevents.conversion import to_binary
from flask import Flask

from shared.core.settings import load_settings
from shared.domain.alerts.model import Alert
from shared.domain.trigger import Trigger
from shared.entry.alert_notify import FUNCTION as ALERT_NOTIFY
from shared.entry.alert_notify import notify_from_http
from shared.entry.collect import collect_once
from shared.entry.delivery import RUNNING_RETRY_AFTER_SECONDS
from shared.entry.triggers import PING_EVENT_TYPE
from shared.notify.cloudevents import alert_events
from shared.notify.message import group_by_severity
from shared.store.connection import connect, open_store
from shared.store.idempotency import STALE_RUNNING_SECONDS, Claim, claim_event
from tests.conftest import BACKENDS
from tests.support.notify_receivers import http_receiver

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

T0 = 1_795_000_000.0


def test_a_running_claim_is_running_until_it_is_stale_then_one_retry_takes_it(tmp_path: Path):
    conn = connect(tmp_path / "db.sqlite")
    try:
        assert claim_event(conn, "backup", "/ping", "tick-1", T0) is Claim.TAKEN  # this delivery is then killed
        assert claim_event(conn, "backup", "/ping", "tick-1", T0 + 60) is Claim.RUNNING  # may still be at work
        assert claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS - 1) is Claim.RUNNING
        assert claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS + 1) is Claim.TAKEN
        assert claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS + 2) is Claim.RUNNING
    finally:
        conn.close()


def test_a_finished_claim_stays_a_duplicate_however_old(tmp_path: Path):
    from shared.store.idempotency import finish_event

    conn = connect(tmp_path / "db.sqlite")
    try:
        assert claim_event(conn, "collect", "/ping", "tick-1", T0) is Claim.TAKEN
        finish_event(conn, "collect", "/ping", "tick-1", "ok")
        assert claim_event(conn, "collect", "/ping", "tick-1", T0 + 1) is Claim.DONE
        assert claim_event(conn, "collect", "/ping", "tick-1", T0 + 3 * STALE_RUNNING_SECONDS) is Claim.DONE
    finally:
        conn.close()


def test_an_alert_whose_delivery_was_killed_is_sent_on_the_brokers_retry(tmp_path: Path):
    alert = Alert("ContainerOOMKilled", "warning",
                  {"alertname": "ContainerOOMKilled", "severity": "warning", "namespace": "shop",
                   "workload_kind": "Deployment", "workload": "api", "container": "api"},
                  "api in shop/api was OOMKilled", "", T0)
    [event] = alert_events(group_by_severity([alert]), 7, load_settings(), T0)
    headers, body = to_binary(event)
    app = Flask(__name__)
    with http_receiver() as slack:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url, webhook_url=None,
                                 smtp_host=None, alert_webhook_token=None, cluster_name="prod-eu")
        conn = open_store(settings)
        try:  # the first delivery claimed the event, then its pod was killed before Slack was called
            assert claim_event(conn, ALERT_NOTIFY, event["source"], event["id"], T0) is Claim.TAKEN
        finally:
            conn.close()

        def broker_retry(at: float) -> int:
            with app.test_request_context("/", method="POST", data=body, headers=headers):
                from flask import request
                return notify_from_http(request, settings, clock=lambda: at)[0]

        assert broker_retry(T0 + 60) == 503  # the first delivery may still be sending: come back later
        assert slack.requests == []
        assert broker_retry(T0 + STALE_RUNNING_SECONDS + 60) == 204
        [message] = [r.json for r in slack.requests]
        assert broker_retry(T0 + STALE_RUNNING_SECONDS + 120) == 204  # done now: a duplicate
        assert len(slack.requests) == 1
    assert message["blocks"][0]["text"]["text"] == "WARNING: 1 firing in prod-eu — ContainerOOMKilled"


def test_a_collection_whose_run_was_killed_runs_on_the_ping_sources_retry(tmp_path: Path, cluster, clock):  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, cluster)
    trigger = Trigger("cloudevent", event_source="/apis/v1/namespaces/monitoring/pingsources/collect-schedule",
                      event_id="tick-42", event_type=PING_EVENT_TYPE)
    conn = open_store(settings)
    try:
        assert claim_event(conn, "collect", trigger.event_source or "", "tick-42", clock()) is Claim.TAKEN  # killed
    finally:
        conn.close()
    clock.advance(STALE_RUNNING_SECONDS + 1)
    body, status = collect_once(settings, trigger, clock=clock)
    assert (status, body["status"]) == (200, "ok"), body
    again, _ = collect_once(settings, trigger, clock=clock)
    assert again["status"] == "duplicate"


# --- A redelivery while the first delivery still runs ---------------------------------------------
# The first delivery outlives the sender's patience (Knative answers it 504 at timeoutSeconds while it
# goes on), so the sender retries while it runs, and the first then fails in a way worth a retry.
# If the redelivery was answered "done", the sender stops and the work never happens.

PING_SOURCE_RETRIES = frozenset({404, 413, 425, 429, 502, 503, 504})  # FACTS.md: what PingSource retries


def _ping(event_id: str) -> Trigger:
    return Trigger("cloudevent", event_source="/apis/v1/namespaces/monitoring/pingsources/collect-schedule",
                   event_id=event_id, event_type=PING_EVENT_TYPE)


def test_a_collection_redelivered_while_it_runs_and_then_failing_runs_on_a_later_retry(
        tmp_path: Path, cluster, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shared.entry import collect as collect_entry
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, cluster, kube_max_retries=0)
    tick = _ping("tick-7")
    sender_saw: list[int] = []
    real_run = collect_entry.run_collection

    def first_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        sender_saw.append(collect_once(settings, tick, clock=clock)[1])  # the sender's retry, while this runs
        cluster.kube.inject("/api/v1/pods", 503)  # then the first run fails in a way worth a retry
        return real_run(*args, **kwargs)

    monkeypatch.setattr(collect_entry, "run_collection", first_run)
    first, status = collect_once(settings, tick, clock=clock)  # its answer reaches nobody: the sender got a 504
    monkeypatch.undo()
    assert (first["status"], status) == ("failed", 503), first
    while sender_saw[-1] in PING_SOURCE_RETRIES and len(sender_saw) < 5:  # the sender retries what it may
        clock.advance(1)
        sender_saw.append(collect_once(settings, tick, clock=clock)[1])

    assert sender_saw == [503, 200]
    conn = open_store(settings)
    try:
        runs = conn.execute("SELECT status FROM runs WHERE event_id = 'tick-7' ORDER BY id").fetchall()
    finally:
        conn.close()
    assert runs == [("failed",), ("ok",)]


def test_the_redelivery_of_a_running_collection_is_answered_503_with_retry_after(
        tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    import time

    import functions_framework

    from shared.entry.http import use_settings
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, cluster)
    tick = _ping("tick-8")
    conn = open_store(settings)
    try:
        assert claim_event(conn, "collect", tick.event_source or "", "tick-8", time.time()) is Claim.TAKEN  # at work
    finally:
        conn.close()
    app = functions_framework.create_app("collect", "functions/collect/main.py")
    use_settings(app, settings)
    answer = app.test_client().post("/", headers={
        "ce-specversion": "1.0", "ce-type": PING_EVENT_TYPE, "ce-source": tick.event_source, "ce-id": "tick-8"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(RUNNING_RETRY_AFTER_SECONDS)
    body = answer.get_json()
    assert body["status"] == "running"
    assert body["error"] == ("event tick-8 from /apis/v1/namespaces/monitoring/pingsources/collect-schedule is "
                             "still being handled by an earlier delivery; retry later")


@pytest.mark.sqlite_only("the backup of a SQLite file; PostgreSQL's backup is pg_dump's")
def test_a_backup_redelivered_while_it_runs_and_then_failing_runs_on_a_later_retry(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shared.entry import backup as backup_entry
    from shared.entry.backup import backup_once
    from shared.ops.backup import BackupOutcome
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    open_store(settings).close()
    tick = _ping("tick-9")
    sender_saw: list[int] = []

    def first_backup(*args, **kwargs) -> BackupOutcome:  # type: ignore[no-untyped-def]
        sender_saw.append(backup_once(settings, tick, clock=lambda: T0 + 1)[1])  # the sender's retry
        return BackupOutcome("failed", error="database is locked", retriable=True)

    monkeypatch.setattr(backup_entry, "run_backup", first_backup)
    first, status = backup_once(settings, tick, clock=lambda: T0)
    monkeypatch.undo()
    assert (first["status"], status) == ("failed", 503)
    while sender_saw[-1] in PING_SOURCE_RETRIES and len(sender_saw) < 5:
        sender_saw.append(backup_once(settings, tick, clock=lambda: T0 + 2)[1])

    assert sender_saw == [503, 200]
    assert len(list(settings.backup_dir.glob("k8s_metrics_*.db.gz"))) == 1


def test_an_alert_redelivered_while_it_is_sent_and_then_failing_is_sent_on_a_later_retry(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shared.entry import alert_notify as alert_entry

    alert = Alert("ContainerOOMKilled", "warning",
                  {"alertname": "ContainerOOMKilled", "severity": "warning", "namespace": "shop",
                   "workload_kind": "Deployment", "workload": "api", "container": "api"},
                  "api in shop/api was OOMKilled", "", T0)
    [event] = alert_events(group_by_severity([alert]), 7, load_settings(), T0)
    headers, body = to_binary(event)
    app = Flask(__name__)
    broker_retries = frozenset(range(500, 600)) | {429}  # FACTS.md: a Knative Broker retries 5xx and 429
    broker_saw: list[int] = []
    with http_receiver() as slack:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url, webhook_url=None,
                                 smtp_host=None, alert_webhook_token=None, notify_max_attempts=1,
                                 cluster_name="prod-eu")

        def deliver(at: float) -> int:
            with app.test_request_context("/", method="POST", data=body, headers=headers):
                from flask import request
                return notify_from_http(request, settings, clock=lambda: at, sleep=lambda _: None)[0]

        real_send = alert_entry.send_groups

        def first_send(*args, **kwargs):  # type: ignore[no-untyped-def]
            broker_saw.append(deliver(T0 + 1))  # the broker's retry, while Slack is being called
            slack.reply(500, "internal_error")  # then Slack fails: worth a retry
            return real_send(*args, **kwargs)

        monkeypatch.setattr(alert_entry, "send_groups", first_send)
        assert deliver(T0) == 503
        monkeypatch.undo()
        while broker_saw[-1] in broker_retries and len(broker_saw) < 10:
            broker_saw.append(deliver(T0 + 2))
        delivered = [r.json["blocks"][0]["text"]["text"] for r in slack.requests]

    assert broker_saw == [503, 204]
    # the failed attempt, then the sent one
    assert delivered == ["WARNING: 1 firing in prod-eu — ContainerOOMKilled"] * 2
