"""With K_SINK set the collector emits CloudEvents (binary mode) and leaves the sending to
alert_notify; alert trouble never fails a collection."""

from __future__ import annotations

import io
import json

import requests

from shared.core.logs import configure_logging
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.store.connection import connect, transaction
from tests.conftest import make_settings
from tests.support.notify_receivers import http_receiver
from tests.support.servers import function_server


def _post(url: str, headers: dict | None = None, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    """POST closing the connection, so the server stops at once when the test ends (no keep-alive)."""
    return requests.post(url, headers={**(headers or {}), "Connection": "close"}, **kwargs)



def _events(receiver) -> list[tuple[dict, dict]]:  # type: ignore[no-untyped-def]
    """(ce- headers without the prefix, data) of each request the sink got."""
    return [({k.lower()[3:]: v for k, v in r.headers.items() if k.lower().startswith("ce-")}, r.json)
            for r in receiver.requests]


def test_collection_emits_completed_and_alert_events_in_binary_mode(tmp_path, cluster, clock):
    with http_receiver("/default/broker") as sink, http_receiver() as slack:
        settings = make_settings(tmp_path, cluster, k_sink=sink.url, slack_webhook_url=slack.url,
                                 k_ce_overrides='{"extensions": {"cluster": "prod-eu"}}')
        body, status = collect_once(settings, Trigger("schedule"), clock=clock)
        events = _events(sink)
    assert (body["status"], status) == ("ok", 200)
    (completed, run), (firing, alerts) = events
    assert completed["type"] == "dev.k8smonitor.collection.completed"
    assert completed["source"] == "/k8s-resource-monitor/collect"
    assert completed["specversion"] == "1.0" and completed["cluster"] == "prod-eu" and completed["id"]
    assert sink.requests[0].headers["Content-Type"] == "application/json"
    assert (run["run_id"], run["status"], run["pods"]) == (body["run_id"], "ok", body["pods"])
    assert firing["type"] == "dev.k8smonitor.alert.firing"
    assert (firing["severity"], firing["cluster"]) == ("warning", "prod-eu")
    assert alerts["status"] == "firing" and alerts["run_id"] == body["run_id"]
    assert {a["labels"]["alertname"] for a in alerts["alerts"]} >= {"CPUThrottled", "MemoryNearLimit"}
    assert slack.requests == []  # alert_notify sends, not the collector


def test_alert_events_not_taken_by_the_sink_are_emitted_again_next_run(tmp_path, cluster, clock):
    with http_receiver("/default/broker") as sink:
        settings = make_settings(tmp_path, cluster, k_sink=sink.url, notify_max_attempts=1)
        sink.reply(202)  # collection.completed accepted
        sink.reply(503, "broker not ready")  # alert.firing refused
        collect_once(settings, Trigger("schedule"), clock=clock)
        clock.advance(300)
        collect_once(settings, Trigger("schedule"), clock=clock)
        clock.advance(300)
        collect_once(settings, Trigger("schedule"), clock=clock)
        events = _events(sink)
    assert [headers["type"] for headers, _ in events[:5]] == [
        "dev.k8smonitor.collection.completed", "dev.k8smonitor.alert.firing",
        "dev.k8smonitor.collection.completed", "dev.k8smonitor.alert.firing", "dev.k8smonitor.collection.completed"]
    first, second, *later = (data for headers, data in events if headers["type"].endswith("alert.firing"))
    refused = {a["fingerprint"] for a in first["alerts"]}
    assert refused <= {a["fingerprint"] for a in second["alerts"]}
    assert not refused & {a["fingerprint"] for data in later for a in data["alerts"]}  # taken: not emitted again


def test_a_failed_collection_emits_collection_failed(tmp_path, clock):
    with http_receiver("/default/broker") as sink:
        settings = make_settings(tmp_path, None, k_sink=sink.url)
        body, status = collect_once(settings, Trigger("schedule"), clock=clock)
        [(headers, data)] = _events(sink)
    assert body["status"] == "failed"
    assert headers["type"] == "dev.k8smonitor.collection.failed"
    assert data["status"] == "failed" and data["error"] == body["error"]


def test_broken_alert_state_is_logged_and_the_collection_still_succeeds(tmp_path, cluster, clock):
    settings = make_settings(tmp_path, cluster)
    conn = connect(settings.database_path)
    with transaction(conn):
        conn.execute("DROP TABLE alerts")
    conn.close()
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        body, status = collect_once(settings, Trigger("schedule"), clock=clock)
    finally:
        configure_logging()
    assert (body["status"], status) == ("ok", 200)
    [line] = [json.loads(line) for line in stream.getvalue().splitlines() if "alert evaluation" in line]
    assert line["level"] == "ERROR"
    assert line["message"] == f"alert evaluation after run {body['run_id']} failed; the run itself is stored"
    assert "no such table: alerts" in line["exception"]


def test_events_from_the_collector_are_delivered_by_alert_notify(tmp_path, cluster, clock):
    """The whole Knative path: collect -> K_SINK (here a recorder standing in for the Broker) ->
    alert_notify over HTTP -> Slack."""
    with http_receiver("/default/broker") as sink, http_receiver() as slack:
        settings = make_settings(tmp_path, cluster, k_sink=sink.url)
        collect_once(settings, Trigger("schedule"), clock=clock)
        env = {"DATABASE_PATH": str(settings.database_path), "SLACK_WEBHOOK_URL": slack.url, "WEBHOOK_URL": "",
               "SMTP_HOST": "", "ALERT_WEBHOOK_TOKEN": "", "K_SINK": ""}
        with function_server("alert_notify", env) as url:
            answers = [_post(url, headers=r.headers, data=r.body, timeout=30).status_code
                       for r in sink.requests if r.headers.get("ce-type", "").startswith("dev.k8smonitor.alert.")]
        [(_, data)] = [(h, d) for h, d in _events(sink) if h["type"] == "dev.k8smonitor.alert.firing"]
    assert answers == [204]
    [message] = [r.json for r in slack.requests]
    assert message["blocks"][0]["text"]["text"].startswith(f"WARNING: {len(data['alerts'])} firing")


def test_a_large_alert_group_is_split_into_events_that_alert_notify_accepts():
    from shared.core.settings import load_settings
    from shared.domain.alerts.model import Alert
    from shared.notify.cloudevents import alert_events
    from shared.notify.message import group_by_severity

    settings = load_settings(max_body_bytes=64 * 1024)
    alerts = [Alert("CPUThrottled", "warning", {"alertname": "CPUThrottled", "severity": "warning",
                                                "workload": f"api-{i}"}, "throttled", "x" * 200, 0.0)
              for i in range(1000)]
    events = alert_events(group_by_severity(alerts), 1, settings, 0.0)
    sizes = [len(json.dumps(event.get_data())) for event in events]
    assert len(events) > 1 and max(sizes) < settings.max_body_bytes
    assert sum(len(event.get_data()["alerts"]) for event in events) == 1000


def test_when_the_sink_refuses_the_run_event_alerts_wait_for_the_next_run(tmp_path, cluster, clock):
    with http_receiver("/default/broker") as sink:
        settings = make_settings(tmp_path, cluster, k_sink=sink.url, notify_max_attempts=1)
        sink.reply(503, "broker not ready")
        collect_once(settings, Trigger("schedule"), clock=clock)
        clock.advance(300)
        collect_once(settings, Trigger("schedule"), clock=clock)
        types = [headers["type"] for headers, _ in _events(sink)]
    assert types == ["dev.k8smonitor.collection.completed", "dev.k8smonitor.collection.completed",
                     "dev.k8smonitor.alert.firing"]


def test_a_sink_that_is_down_holds_the_announcement_no_longer_than_the_deadline(tmp_path, cluster, clock):
    """Without a bound, five attempts with backoff would hold the run for about a minute."""
    from shared.core.deadline import Deadline
    from shared.domain.collection import run_collection
    from shared.notify.announce import announce_run

    sleeps: list[float] = []
    with http_receiver("/default/broker") as sink:
        settings = make_settings(tmp_path, cluster, k_sink=sink.url, notify_backoff_seconds=5)
        sink.reply(503, "broker not ready")
        run = run_collection(settings, Trigger("schedule"), None, clock).run
        announce_run(settings, run, clock, sleep=sleeps.append, deadline=Deadline(2.0))
        refused = len(sink.requests)
        clock.advance(300)
        later = run_collection(settings, Trigger("schedule"), None, clock).run
        announce_run(settings, later, clock, sleep=sleeps.append, deadline=Deadline(60.0))
        types = [headers["type"] for headers, _ in _events(sink)]
    assert refused == 1 and sleeps == []  # one try, no wait that would end past the deadline
    assert types == ["dev.k8smonitor.collection.completed", "dev.k8smonitor.collection.completed",
                     "dev.k8smonitor.alert.firing"]  # the alerts waited for the next run
