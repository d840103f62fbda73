"""Delivery to a real HTTP receiver that answers like Slack: success, 429, 5xx, 404, and records."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared.core.deadline import Deadline
from shared.core.logs import configure_logging
from shared.core.retry import RetryPolicy
from shared.core.settings import load_settings
from shared.domain.alerts.model import Alert
from shared.notify.delivery import Attempt, post, with_retries
from shared.notify.dispatch import send_groups
from shared.notify.message import AlertGroup
from shared.store.connection import open_store
from tests.conftest import BACKENDS
from tests.support.notify_receivers import http_receiver
from tests.support.servers import free_port

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

POLICY = RetryPolicy(max_attempts=4, backoff_seconds=1.0, max_backoff_seconds=30.0)


def _group(severity: str = "critical") -> AlertGroup:
    alert = Alert("ContainerOOMKilled", severity, {"alertname": "ContainerOOMKilled", "severity": severity,
                                                   "namespace": "shop", "workload": "api", "container": "api"},
                  "api was OOMKilled", "restarted 3 times", 1_767_225_600.0)
    return AlertGroup(severity, (alert,))


def _slack(url: str) -> Attempt:
    return post(url, 5.0, payload={"text": "hello"}, expect_body="ok")


def _deliver(url: str, sleeps: list[float], records: list[tuple[int, str]]) -> Attempt:
    return with_retries(lambda: _slack(url), POLICY, lambda n, a: records.append((n, a.status)), sleeps.append,
                        random.Random(1))


def test_slack_ok_is_sent_once():
    sleeps, records = [], []
    with http_receiver() as slack:
        final = _deliver(slack.url, sleeps, records)
    assert final == Attempt("sent")
    assert records == [(1, "sent")] and sleeps == []
    assert [r.json for r in slack.requests] == [{"text": "hello"}]


def test_429_waits_what_retry_after_asks_then_sends():
    sleeps, records = [], []
    with http_receiver() as slack:
        slack.reply(429, "rate_limited", Retry_After="3")
        final = _deliver(slack.url, sleeps, records)
    assert final.ok
    assert sleeps == [3.0]
    assert records == [(1, "retry"), (2, "sent")]
    assert len(slack.requests) == 2


def test_5xx_backs_off_exponentially_with_jitter_and_gives_up():
    sleeps, records = [], []
    with http_receiver() as slack:
        for _ in range(4):
            slack.reply(500, "internal_error")
        final = _deliver(slack.url, sleeps, records)
    assert final.status == "failed" and final.transient
    assert final.error == "answered 500 'internal_error' (gave up after 4 attempts)"
    assert records == [(1, "retry"), (2, "retry"), (3, "retry"), (4, "failed")]
    assert len(sleeps) == 3
    for number, slept in enumerate(sleeps, start=1):
        ceiling = 2 ** (number - 1)
        assert ceiling / 2 <= slept <= ceiling
    assert len(slack.requests) == 4


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (400, "invalid_payload"), (403, "action_prohibited"),
                                               (410, "channel_is_archived")])
def test_permanent_errors_are_not_retried(status, body):
    sleeps, records = [], []
    with http_receiver() as slack:
        slack.reply(status, body)
        final = _deliver(slack.url, sleeps, records)
    assert final == Attempt("failed", f"answered {status} {body!r}")
    assert records == [(1, "failed")] and sleeps == []


def test_slack_200_without_ok_is_not_success():
    with http_receiver() as slack:
        slack.reply(200, "something else")
        final = _slack(slack.url)
    assert final.status == "failed"
    assert "instead of 'ok'" in final.error


def test_retry_after_longer_than_the_backoff_bound_gives_up_at_once():
    sleeps, records = [], []
    with http_receiver() as slack:
        slack.reply(429, "rate_limited", Retry_After="3600")
        final = _deliver(slack.url, sleeps, records)
    assert final.status == "failed"
    assert "asked to retry after 3600s, longer than NOTIFY_MAX_BACKOFF_SECONDS (30s)" in final.error
    assert sleeps == []


def test_unreachable_webhook_error_and_logs_do_not_show_the_url(tmp_path):
    secret_path = "/services/T0SECRET/B0SECRET/abcdefghijklmnopqrstuvwx"
    url = f"http://127.0.0.1:{free_port()}{secret_path}"
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=url, smtp_host=None,
                                 webhook_url=None, notify_max_attempts=2, notify_backoff_seconds=0)
        conn = open_store(settings)
        [result] = send_groups(settings, conn, [_group()], sleep=lambda s: None)
        errors = [row[0] for row in conn.execute("SELECT error FROM notifications")]
    finally:
        configure_logging()
    assert not result.delivered
    assert "ConnectionError" in result.failures["slack"]
    logged = stream.getvalue()
    assert "could not send 1 critical alert(s) to slack" in logged
    for text in [*errors, result.failures["slack"], logged]:
        assert "T0SECRET" not in text and "abcdefghijklmnopqrstuvwx" not in text


def test_a_failing_channel_does_not_stop_the_others_and_every_attempt_is_recorded(tmp_path):
    with http_receiver() as slack, http_receiver("/hooks/generic") as webhook:
        slack.reply(404, "no_service")
        webhook.reply(503, "busy")
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url,
                                 webhook_url=webhook.url, smtp_host=None, notify_backoff_seconds=0)
        conn = open_store(settings)
        [result] = send_groups(settings, conn, [_group()], event_id="run-7", sleep=lambda s: None)
        rows = conn.execute("SELECT channel, severity, status, attempt, alerts, fingerprints, event_id"
                            " FROM notifications ORDER BY id").fetchall()
    assert result.delivered and not result.worth_retrying
    assert set(result.outcomes) == {"slack", "webhook"}
    fingerprints = json.dumps(_group().fingerprints)
    assert rows == [("slack", "critical", "failed", 1, 1, fingerprints, "run-7"),
                    ("webhook", "critical", "retry", 1, 1, fingerprints, "run-7"),
                    ("webhook", "critical", "sent", 2, 1, fingerprints, "run-7")]
    body = webhook.requests[-1].json
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["labels"]["alertname"] == "ContainerOOMKilled"


def test_routing_by_severity_skips_channels_that_are_not_configured(tmp_path, caplog):
    with http_receiver() as slack:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url, webhook_url=None,
                                 smtp_host=None, alert_route_warning="email", alert_route_info="slack")
        conn = open_store(settings)
        with caplog.at_level(logging.DEBUG, logger="shared.notify.dispatch"):
            results = send_groups(settings, conn, [_group("critical"), _group("warning"), _group("info")])
    assert [set(r.outcomes) for r in results] == [{"slack"}, set(), {"slack"}]
    assert all(r.delivered for r in results)
    assert len(slack.requests) == 2
    assert "warning alerts not sent to email: the channel is not configured" in caplog.text


def test_unknown_severity_takes_the_warning_route(tmp_path):
    with http_receiver() as slack:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=slack.url, webhook_url=None,
                                 smtp_host=None)
        [result] = send_groups(settings, open_store(settings), [_group("page")])
    assert set(result.outcomes) == {"slack"}
    assert slack.requests[0].json["blocks"][0]["text"]["text"].startswith("PAGE: 1 firing")


@contextmanager
def _silent_server() -> Iterator[str]:
    """A URL whose server takes the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        listener.close()


def test_no_retry_waits_past_the_deadline():
    sleeps, records = [], []
    slow_policy = RetryPolicy(max_attempts=5, backoff_seconds=10.0, max_backoff_seconds=30.0)
    with http_receiver() as slack:
        slack.reply(503, "service_unavailable")
        final = with_retries(lambda: _slack(slack.url), slow_policy, lambda n, a: records.append((n, a.status)),
                             sleeps.append, random.Random(1), Deadline(3.0))
    assert final.status == "failed" and final.transient
    assert final.error == ("answered 503 'service_unavailable' (gave up after attempt 1: the time budget of 3s "
                           "ends before the next)")
    assert records == [(1, "failed")] and sleeps == []
    assert len(slack.requests) == 1


def test_nothing_is_tried_once_the_deadline_has_passed():
    records = []
    with http_receiver() as slack:
        final = with_retries(lambda: _slack(slack.url), POLICY, lambda n, a: records.append((n, a.status)),
                             deadline=Deadline(0.0))
    assert (final.status, final.transient) == ("failed", True)
    assert final.error == "not tried: the time budget of 0s is used up"
    assert records == [] and slack.requests == []


def test_a_channel_that_never_answers_is_given_only_what_is_left_of_the_deadline(tmp_path):
    sleeps: list[float] = []
    with _silent_server() as url:
        settings = load_settings(database_path=tmp_path / "db.sqlite", slack_webhook_url=url, webhook_url=None,
                                 smtp_host=None, notify_timeout_seconds=10)
        conn = open_store(settings)
        try:
            [result] = send_groups(settings, conn, [_group()], sleep=sleeps.append, deadline=Deadline(0.3))
        finally:
            conn.close()
    error = result.outcomes["slack"].error or ""
    waited = re.fullmatch(r"no answer within ([0-9.]+)s \(gave up after attempt 1: .*\)", error)
    assert waited, error
    assert float(waited.group(1)) <= 0.3  # not NOTIFY_TIMEOUT_SECONDS
    assert sleeps == [] and result.worth_retrying
