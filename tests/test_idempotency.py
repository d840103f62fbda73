"""A delivery killed mid-way leaves its claim `running`; the sender's retry must still get the work
done once the claim is stale, for every function that dedupes events."""

from __future__ import annotations

from pathlib import Path

from cloudevents.conversion import to_binary
from flask import Flask

from shared.core.settings import load_settings
from shared.domain.alerts.model import Alert
from shared.domain.trigger import Trigger
from shared.entry.alert_notify import FUNCTION as ALERT_NOTIFY
from shared.entry.alert_notify import notify_from_http
from shared.entry.collect import collect_once
from shared.entry.triggers import PING_EVENT_TYPE
from shared.notify.cloudevents import alert_events
from shared.notify.message import group_by_severity
from shared.store.connection import connect
from shared.store.idempotency import STALE_RUNNING_SECONDS, claim_event
from tests.notify_receivers import http_receiver

T0 = 1_795_000_000.0


def test_a_running_claim_is_a_duplicate_until_it_is_stale_then_one_retry_takes_it(tmp_path: Path):
    conn = connect(tmp_path / "db.sqlite")
    try:
        assert claim_event(conn, "backup", "/ping", "tick-1", T0)  # this delivery is then killed
        assert not claim_event(conn, "backup", "/ping", "tick-1", T0 + 60)  # may still be at work
        assert not claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS - 1)
        assert claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS + 1)
        assert not claim_event(conn, "backup", "/ping", "tick-1", T0 + STALE_RUNNING_SECONDS + 2)  # taken once
    finally:
        conn.close()


def test_a_finished_claim_stays_a_duplicate_however_old(tmp_path: Path):
    from shared.store.idempotency import finish_event

    conn = connect(tmp_path / "db.sqlite")
    try:
        assert claim_event(conn, "collect", "/ping", "tick-1", T0)
        finish_event(conn, "collect", "/ping", "tick-1", "ok")
        assert not claim_event(conn, "collect", "/ping", "tick-1", T0 + 3 * STALE_RUNNING_SECONDS)
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
                                 smtp_host=None, alert_webhook_token=None)
        conn = connect(settings.database_path)
        try:  # the first delivery claimed the event, then its pod was killed before Slack was called
            assert claim_event(conn, ALERT_NOTIFY, event["source"], event["id"], T0)
        finally:
            conn.close()

        def broker_retry(at: float) -> int:
            with app.test_request_context("/", method="POST", data=body, headers=headers):
                from flask import request
                return notify_from_http(request, settings, clock=lambda: at)[0]

        assert broker_retry(T0 + 60) == 204  # the first delivery may still be sending
        assert slack.requests == []
        assert broker_retry(T0 + STALE_RUNNING_SECONDS + 60) == 204
        [message] = [r.json for r in slack.requests]
        assert broker_retry(T0 + STALE_RUNNING_SECONDS + 120) == 204  # done now: a duplicate
        assert len(slack.requests) == 1
    assert message["blocks"][0]["text"]["text"] == "WARNING: 1 firing — ContainerOOMKilled"


def test_a_collection_whose_run_was_killed_runs_on_the_ping_sources_retry(tmp_path: Path, cluster, clock):  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, cluster)
    trigger = Trigger("cloudevent", event_source="/apis/v1/namespaces/monitoring/pingsources/collect-schedule",
                      event_id="tick-42", event_type=PING_EVENT_TYPE)
    conn = connect(settings.database_path)
    try:
        assert claim_event(conn, "collect", trigger.event_source or "", "tick-42", clock())  # then killed
    finally:
        conn.close()
    clock.advance(STALE_RUNNING_SECONDS + 1)
    body, status = collect_once(settings, trigger, clock=clock)
    assert (status, body["status"]) == (200, "ok"), body
    again, _ = collect_once(settings, trigger, clock=clock)
    assert again["status"] == "duplicate"
