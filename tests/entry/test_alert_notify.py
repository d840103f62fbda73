"""alert_notify over HTTP (the real functions-framework server): Alertmanager webhooks and our
CloudEvents in, Slack and email out, each event sent once, bad input refused with a reason."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured

from shared.core.settings import load_settings
from shared.domain.alerts.model import Alert
from shared.notify.cloudevents import SOURCE, alert_events
from shared.notify.message import group_by_severity
from tests.support.notify_receivers import http_receiver, smtp_server
from tests.support.servers import free_port, function_server

TOKEN = "alert-token-0123456789abcdef"

# Alertmanager's webhook body (version 4) as documented in its webhook_config reference, filled
# with what Alertmanager sends for a kube-prometheus rule group: a firing and a resolved alert.
ALERTMANAGER_EXAMPLE = {
    "version": "4",
    "groupKey": "{}/{severity=\"critical\"}:{alertname=\"KubePodCrashLooping\"}",
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "k8s-resource-monitor",
    "groupLabels": {"alertname": "KubePodCrashLooping"},
    "commonLabels": {"alertname": "KubePodCrashLooping", "severity": "critical", "namespace": "shop"},
    "commonAnnotations": {"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"},
    "externalURL": "http://alertmanager.monitoring:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "KubePodCrashLooping", "severity": "critical", "namespace": "shop",
                       "pod": "checkout-7d9f8b6c5d-x2x7k", "container": "checkout"},
            "annotations": {"summary": "Pod is crash looping.",
                            "description": "Pod shop/checkout-7d9f8b6c5d-x2x7k (checkout) is in waiting state "
                                           "(reason: \"CrashLoopBackOff\")."},
            "startsAt": "2026-11-24T09:55:12.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=max_over_time%28kube_pod_container_"
                            "status_waiting_reason%5B5m%5D%29+%3E%3D+1&g0.tab=1",
            "fingerprint": "6f3d1e2a9b8c7d10",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "KubePodCrashLooping", "severity": "critical", "namespace": "shop",
                       "pod": "cart-5c6d7e8f9a-abcde", "container": "cart"},
            "annotations": {"summary": "Pod is crash looping.",
                            "description": "Pod shop/cart-5c6d7e8f9a-abcde (cart)."},
            "startsAt": "2026-11-24T08:10:00Z",
            "endsAt": "2026-11-24T09:40:00Z",
            "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=up",
            "fingerprint": "0a1b2c3d4e5f6a7b",
        },
    ],
}

def _post(url: str, headers: dict | None = None, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    """POST closing the connection, so the server stops at once when the test ends (no keep-alive)."""
    return requests.post(url, headers={**(headers or {}), "Connection": "close"}, **kwargs)


def _get(url: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(url, headers={"Connection": "close"}, **kwargs)



@pytest.fixture(scope="module")
def channels(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("alert-notify-channels")
    with http_receiver() as slack, smtp_server(tmp) as smtp:
        yield slack, smtp


@pytest.fixture(scope="module")
def server(channels, tmp_path_factory):  # type: ignore[no-untyped-def]
    slack, smtp = channels
    tmp = tmp_path_factory.mktemp("alert-notify")
    env = {"DATABASE_PATH": str(tmp / "db.sqlite"), "SLACK_WEBHOOK_URL": slack.url, "WEBHOOK_URL": "",
           "CLUSTER_NAME": "relay-cluster",
           "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "starttls",
           "SMTP_USERNAME": smtp.username, "SMTP_PASSWORD": smtp.password, "SMTP_CA_FILE": str(smtp.ca_file),
           "SMTP_FROM": "monitor@example.com", "SMTP_TO": "oncall@example.com",
           "NOTIFY_MAX_ATTEMPTS": "2", "NOTIFY_BACKOFF_SECONDS": "0", "ALERT_WEBHOOK_TOKEN": "", "K_SINK": ""}
    with function_server("alert_notify", env, log_path=tmp / "server.log") as url:
        yield url


@pytest.fixture
def fresh(channels):  # type: ignore[no-untyped-def]
    slack, smtp = channels
    slack.requests.clear()
    slack.replies.clear()
    smtp.messages.clear()
    return slack, smtp


def _payload(group_key: str) -> dict:
    payload = copy.deepcopy(ALERTMANAGER_EXAMPLE)
    payload["groupKey"] = group_key
    return payload


def test_alertmanager_example_goes_to_slack_and_email_once(server, fresh):
    slack, smtp = fresh
    payload = _payload("example-once")
    first = _post(server, json=payload, timeout=30)
    again = _post(server, json=payload, timeout=30)  # Alertmanager retrying a lost answer
    assert (first.status_code, first.content) == (204, b"")
    assert (again.status_code, again.content) == (204, b"")
    [message] = [r.json for r in slack.requests]
    # Alertmanager's alerts carry no cluster label: they are told as this cluster's (CLUSTER_NAME)
    assert message["blocks"][0]["text"]["text"] == ("CRITICAL: 1 firing, 1 resolved in relay-cluster — "
                                                    "KubePodCrashLooping")
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert "`pod=checkout-7d9f8b6c5d-x2x7k`" in sections[0]
    assert "(reason: \"CrashLoopBackOff\")" in sections[0]
    assert "<http://prometheus.monitoring:9090/graph?g0.expr=max_over_time" in sections[0]
    assert sections[1].startswith(":white_check_mark: *RESOLVED* *KubePodCrashLooping*")
    assert "<http://alertmanager.monitoring:9093|open>" in message["blocks"][-1]["elements"][0]["text"]
    [mail] = smtp.messages
    assert mail["Subject"].startswith("[k8s-resource-monitor] CRITICAL: 1 firing, 1 resolved in relay-cluster")


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_our_alert_cloudevents_are_sent(server, fresh, mode):
    slack, smtp = fresh
    alert = Alert("CPUThrottled", "warning", {"alertname": "CPUThrottled", "severity": "warning", "namespace": "shop",
                                              "workload_kind": "Deployment", "workload": "api", "container": "api",
                                              "cluster": "prod-eu"},
                  "api in shop/api is CPU-throttled 52% of the time", "raise the limit", 1_795_000_000.0)
    settings = load_settings(k_ce_overrides='{"extensions": {"cluster": "prod-eu"}}')
    [event] = alert_events(group_by_severity([alert]), 42, settings, 1_795_000_300.0)
    headers, body = (to_binary if mode == "binary" else to_structured)(event)
    response = _post(server, headers=headers, data=body, timeout=30)
    assert (response.status_code, response.content) == (204, b"")
    [message] = [r.json for r in slack.requests]
    assert message["blocks"][0]["text"]["text"] == "WARNING: 1 firing in prod-eu — CPUThrottled"  # its label
    assert smtp.messages == []  # warning goes to Slack only
    again = _post(server, headers=headers, data=body, timeout=30)
    assert again.status_code == 204 and len(slack.requests) == 1


@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    ({**ALERTMANAGER_EXAMPLE, "version": "3"}, {}, 400, "unsupported Alertmanager webhook version '3'"),
    ({k: v for k, v in ALERTMANAGER_EXAMPLE.items() if k != "version"}, {}, 400,
     "unsupported Alertmanager webhook no version"),
    ({**ALERTMANAGER_EXAMPLE, "alerts": []}, {}, 400,
     "invalid Alertmanager webhook: alerts: List should have at least 1 item"),
    ({**ALERTMANAGER_EXAMPLE, "status": "broken"}, {}, 400, "invalid Alertmanager webhook: status: Input should be"),
    ({**ALERTMANAGER_EXAMPLE, "alerts": [{"status": "firing", "labels": {}}]}, {}, 400,
     "alerts.0.startsAt: Field required"),
    (b"{not json", {"Content-Type": "application/json"}, 400, "request body is not valid JSON"),
    (b'{"alerts": []}', {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x",
                         "ce-type": "dev.k8smonitor.collection.completed", "Content-Type": "application/json"},
     400, "unsupported CloudEvent type 'dev.k8smonitor.collection.completed'"),
    (b'{"alerts": []}', {"ce-specversion": "1.0", "ce-id": "1", "ce-source": SOURCE,
                         "ce-type": "dev.k8smonitor.alert.firing", "Content-Type": "application/json"},
     400, "invalid alert event data: alerts: List should have at least 1 item"),
    (json.dumps(ALERTMANAGER_EXAMPLE).encode(), {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x",
                                                 "ce-type": "dev.k8smonitor.alert.firing",
                                                 "Content-Type": "application/json"},
     400, "CloudEvent source '/x' is not accepted: alert_notify takes alert events only from the collector"),
])
def test_bad_input_is_refused_with_the_reason(server, fresh, body, headers, status, message):
    slack, _ = fresh
    if isinstance(body, dict):
        response = _post(server, json=body, headers=headers, timeout=30)
    else:
        response = _post(server, data=body, headers=headers, timeout=30)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert slack.requests == []


def test_get_is_not_allowed(server):
    response = _get(server, timeout=30)
    assert response.status_code == 405


def test_channel_failure_worth_retrying_answers_503_and_the_retry_skips_what_was_sent(server, fresh):
    slack, smtp = fresh
    slack.reply(500, "internal_error")
    slack.reply(503, "service_unavailable")
    payload = _payload("retry-after-5xx")
    first = _post(server, json=payload, timeout=30)
    assert first.status_code == 503
    assert first.json()["failures"] == {
        "critical/slack": "answered 503 'service_unavailable' (gave up after 2 attempts)"}
    assert len(smtp.messages) == 1  # email went through although Slack failed
    retry = _post(server, json=payload, timeout=30)
    assert (retry.status_code, retry.content) == (204, b"")
    assert len(slack.requests) == 3  # two failed attempts, then the retry's success
    assert len(smtp.messages) == 1  # not sent twice


def test_permanent_channel_failure_answers_500(server, fresh):
    slack, smtp = fresh
    slack.reply(404, "no_service")
    response = _post(server, json=_payload("slack-gone"), timeout=30)
    assert response.status_code == 500
    assert response.json()["failures"] == {"critical/slack": "answered 404 'no_service'"}
    assert len(slack.requests) == 1 and len(smtp.messages) == 1


def _our_event(name: str) -> tuple[dict, bytes]:
    """A critical alert CloudEvent as the collector emits it, in binary mode."""
    alert = Alert(name, "critical", {"alertname": name, "severity": "critical"}, "s", "", 0.0)
    [event] = alert_events(group_by_severity([alert]), 1, load_settings(), 0.0)
    return to_binary(event)


def test_with_a_token_set_every_request_needs_it_cloudevents_too(tmp_path):
    with http_receiver() as slack:
        env = {"DATABASE_PATH": str(tmp_path / "db.sqlite"), "SLACK_WEBHOOK_URL": slack.url, "WEBHOOK_URL": "",
               "SMTP_HOST": "", "ALERT_WEBHOOK_TOKEN": TOKEN, "K_SINK": "", "CLUSTER_NAME": "relay-cluster"}
        with function_server("alert_notify", env) as url:
            missing = _post(url, json=ALERTMANAGER_EXAMPLE, timeout=30)
            wrong = _post(url, json=ALERTMANAGER_EXAMPLE, headers={"Authorization": "Bearer nope"}, timeout=30)
            right = _post(url, json=ALERTMANAGER_EXAMPLE, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            sent_after_right = len(slack.requests)
            headers, body = _our_event("Forged")
            forged = _post(url, headers={**headers, "ce-source": "/anything"}, data=body, timeout=30)
            untokened = _post(url, headers=headers, data=body, timeout=30)
            headers, body = _our_event("Tokened")
            tokened = _post(url, headers={**headers, "Authorization": f"Bearer {TOKEN}"}, data=body, timeout=30)
    assert missing.status_code == wrong.status_code == forged.status_code == untokened.status_code == 401
    assert "send `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>`" in missing.json()["error"]
    assert right.status_code == 204 and sent_after_right == 1
    assert tokened.status_code == 204
    assert [r.json["blocks"][0]["text"]["text"] for r in slack.requests[1:]] == [
        "CRITICAL: 1 firing in relay-cluster — Tokened"]


def test_behind_a_broker_our_cloudevents_may_come_without_the_token(tmp_path):
    with http_receiver() as slack:
        env = {"DATABASE_PATH": str(tmp_path / "db.sqlite"), "SLACK_WEBHOOK_URL": slack.url, "WEBHOOK_URL": "",
               "SMTP_HOST": "", "ALERT_WEBHOOK_TOKEN": TOKEN, "ALERT_CLOUDEVENTS_WITHOUT_TOKEN": "true", "K_SINK": "",
               "CLUSTER_NAME": "relay-cluster"}
        with function_server("alert_notify", env) as url:
            headers, body = _our_event("FromTheBroker")
            from_broker = _post(url, headers=headers, data=body, timeout=30)
            headers, body = _our_event("Forged")
            forged = _post(url, headers={**headers, "ce-source": "/apis/v1/namespaces/x/pingsources/y"}, data=body,
                           timeout=30)
            alertmanager = _post(url, json=ALERTMANAGER_EXAMPLE, timeout=30)
    assert from_broker.status_code == 204
    assert forged.status_code == 400
    assert "CloudEvent source '/apis/v1/namespaces/x/pingsources/y' is not accepted" in forged.json()["error"]
    assert alertmanager.status_code == 401
    assert [r.json["blocks"][0]["text"]["text"] for r in slack.requests] == [
        "CRITICAL: 1 firing in relay-cluster — FromTheBroker"]


def test_an_unreachable_webhook_never_shows_its_url_in_logs_or_answers(tmp_path):
    secret = "/services/T0SECRET/B0SECRET/s3cr3tPathPart1234567890"
    env = {"DATABASE_PATH": str(tmp_path / "db.sqlite"), "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}{secret}",
           "WEBHOOK_URL": "", "SMTP_HOST": "", "ALERT_WEBHOOK_TOKEN": "", "K_SINK": "",
           "NOTIFY_MAX_ATTEMPTS": "2", "NOTIFY_BACKOFF_SECONDS": "0", "LOG_LEVEL": "DEBUG"}
    log_path = tmp_path / "server.log"
    with function_server("alert_notify", env, log_path=log_path) as url:
        response = _post(url, json=ALERTMANAGER_EXAMPLE, timeout=30)
    assert response.status_code == 503
    assert "ConnectionError" in response.json()["failures"]["critical/slack"]
    logged = log_path.read_text()
    assert "could not send 2 critical alert(s) to slack" in logged
    for text in (response.text, logged):
        assert "T0SECRET" not in text and "s3cr3tPathPart" not in text


def test_a_repeat_from_alertmanager_after_its_retry_window_is_sent_again(tmp_path):
    """Alertmanager re-sends an unchanged group on purpose each repeat_interval: that is not a duplicate."""
    from flask import Flask

    from shared.entry.alert_notify import ALERTMANAGER_RETRY_WINDOW_SECONDS, notify_from_http

    app = Flask(__name__)
    now = [1_795_000_000.0]
    with http_receiver() as slack:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url, webhook_url=None,
                                 smtp_host=None, alert_webhook_token=None)

        def post() -> int:
            with app.test_request_context("/", method="POST", data=json.dumps(ALERTMANAGER_EXAMPLE),
                                          content_type="application/json"):
                from flask import request
                return notify_from_http(request, settings, clock=lambda: now[0])[0]

        assert post() == 204
        now[0] += 60
        assert post() == 204
        assert len(slack.requests) == 1
        now[0] += ALERTMANAGER_RETRY_WINDOW_SECONDS + 3600
        assert post() == 204
        assert len(slack.requests) == 2

