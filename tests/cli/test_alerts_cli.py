"""`k8s-monitor alerts` lists what fires and what resolved; `notify-test` tries every channel."""

from __future__ import annotations

import json
import time

import pytest

from shared.cli import main
from shared.domain.alerts.evaluation import Evaluation
from shared.domain.alerts.model import Alert
from shared.domain.alerts.state import update_state
from shared.store.connection import connect
from tests.support.notify_receivers import http_receiver

CHANNEL_VARIABLES = ("SLACK_WEBHOOK_URL", "SLACK_WEBHOOK_URL_FILE", "WEBHOOK_URL", "WEBHOOK_URL_FILE", "SMTP_HOST",
                     "K_SINK", "LOG_FORMAT")


@pytest.fixture
def env(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "db.sqlite"))
    return tmp_path / "db.sqlite"


def _alert(name: str, workload: str) -> Alert:
    labels = {"alertname": name, "severity": "warning", "namespace": "shop", "workload_kind": "Deployment",
              "workload": workload, "container": workload}
    return Alert(name, "warning", labels, f"{workload} is in trouble", "details", 0.0)


def _store_alerts(path, now: float) -> None:  # type: ignore[no-untyped-def]
    conn = connect(path)
    update_state(conn, Evaluation({"CPUThrottled": [_alert("CPUThrottled", "api"), _alert("CPUThrottled", "web")]}),
                 now - 7200)
    update_state(conn, Evaluation({"CPUThrottled": [_alert("CPUThrottled", "api")]}), now - 600)
    conn.close()


def test_alerts_lists_firing_then_recently_resolved(env, capsys):
    _store_alerts(env, time.time())
    assert main(["alerts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["STATE", "SEVERITY", "ALERT", "WHERE", "SINCE", "RESOLVED", "SUMMARY"]
    assert lines[1].split()[:4] == ["firing", "warning", "CPUThrottled", "shop/Deployment/api"]
    assert lines[2].split()[:4] == ["resolved", "warning", "CPUThrottled", "shop/Deployment/web"]
    assert lines[-1] == "1 firing, 1 resolved"


def test_alerts_as_json_and_resolved_window(env, capsys):
    _store_alerts(env, time.time())
    assert main(["alerts", "--json", "--resolved-hours", "0.1"]) == 0
    [only] = json.loads(capsys.readouterr().out)
    assert (only["state"], only["labels"]["workload"], only["summary"]) == ("firing", "api", "api is in trouble")


def test_alerts_on_a_missing_database_says_what_to_do(env, capsys):
    assert main(["alerts"]) == 1
    assert "does not exist yet (DATABASE_PATH); run a collection first" in capsys.readouterr().err


def test_notify_test_sends_one_message_per_configured_channel(env, monkeypatch, capsys):
    with http_receiver() as slack, http_receiver("/generic") as webhook:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        monkeypatch.setenv("WEBHOOK_URL", webhook.url)
        webhook.reply(404, "not here")
        assert main(["notify-test"]) == 1
        out = capsys.readouterr().out
    assert "slack: sent" in out
    assert "webhook: failed (answered 404 'not here')" in out
    assert "test notification from k8s-monitor notify-test" in slack.requests[0].json["blocks"][1]["text"]["text"]
    conn = connect(env, readonly=True)
    rows = conn.execute("SELECT channel, status, event_id FROM notifications ORDER BY id").fetchall()
    conn.close()
    assert rows == [("slack", "sent", "notify-test"), ("webhook", "failed", "notify-test")]


def test_notify_test_without_channels_says_which_settings_to_set(env, capsys):
    assert main(["notify-test"]) == 1
    assert "set SLACK_WEBHOOK_URL, WEBHOOK_URL, or SMTP_HOST with SMTP_FROM and SMTP_TO" in capsys.readouterr().out


def test_notify_test_of_one_unconfigured_channel_names_it(env, monkeypatch, capsys):
    with http_receiver() as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["notify-test", "--channel", "email"]) == 1
        assert slack.requests == []
    assert "channel not configured: email" in capsys.readouterr().out
