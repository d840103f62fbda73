"""Alert email reaches a real SMTP server (aiosmtpd) over verified TLS, with AUTH."""

from __future__ import annotations

import time

import pytest

from shared.core.settings import load_settings
from shared.domain.alerts.model import Alert
from shared.notify.email import email_message, send_email
from shared.notify.message import AlertGroup
from tests.support.notify_receivers import smtp_server


def _group() -> AlertGroup:
    now = time.time()
    firing = Alert("ContainerOOMKilled", "critical",
                   {"alertname": "ContainerOOMKilled", "severity": "critical", "namespace": "shop",
                    "workload_kind": "Deployment", "workload": "api", "container": "api"},
                   "api in shop/api was OOMKilled", "Killed <for> memory & restarted", now - 600)
    resolved = Alert("CPUThrottled", "critical", {"alertname": "CPUThrottled", "severity": "critical"},
                     "throttled", "", now - 3600, now - 60, status="resolved")
    return AlertGroup("critical", (firing, resolved))


def _settings(server, tmp_path, **overrides):  # type: ignore[no-untyped-def]
    values = {"database_path": tmp_path / "db.sqlite", "smtp_host": server.host, "smtp_port": server.port,
              "smtp_security": "starttls", "smtp_username": server.username, "smtp_password": server.password,
              "smtp_from": "monitor@example.com", "smtp_to": "oncall@example.com,team@example.com",
              "smtp_ca_file": server.ca_file, "notify_timeout_seconds": 5}
    return load_settings(**{**values, **overrides})


def _message(settings):  # type: ignore[no-untyped-def]
    return email_message(_group(), settings.smtp_from, settings.smtp_to, time.time())


def test_starttls_with_login_delivers_text_and_html(tmp_path):
    with smtp_server(tmp_path) as server:
        settings = _settings(server, tmp_path)
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "sent" and attempt.error is None
    assert server.logins == [("monitor", True)]
    [mail] = server.messages
    assert mail["Subject"] == "[k8s-resource-monitor] CRITICAL: 1 firing, 1 resolved — ContainerOOMKilled, CPUThrottled"
    assert mail["To"] == "oncall@example.com, team@example.com"
    text = mail.get_body(("plain",)).get_content()
    page = mail.get_body(("html",)).get_content()
    assert "FIRING ContainerOOMKilled: api in shop/api was OOMKilled" in text
    assert "Killed <for> memory & restarted" in text
    assert "Killed &lt;for&gt; memory &amp; restarted" in page
    assert "RESOLVED" in page


def test_a_sender_with_a_display_name_gets_a_message_id_in_its_domain(tmp_path):
    message = email_message(_group(), "K8s Monitor <monitor@example.com>", ("oncall@example.com",), time.time())
    assert message["Message-ID"].endswith("@example.com>")
    assert message["From"] == "K8s Monitor <monitor@example.com>"


def test_implicit_tls_delivers(tmp_path):
    with smtp_server(tmp_path, tls="implicit") as server:
        settings = _settings(server, tmp_path, smtp_security="ssl")
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "sent"
    assert len(server.messages) == 1


def test_wrong_password_is_a_permanent_failure_naming_the_settings(tmp_path):
    with smtp_server(tmp_path) as server:
        settings = _settings(server, tmp_path, smtp_password="wrong-password")
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "failed"
    assert "refused the login of SMTP_USERNAME 'monitor'" in attempt.error
    assert "SMTP_PASSWORD" in attempt.error and "wrong-password" not in attempt.error
    assert server.messages == []


def test_unverifiable_certificate_is_refused(tmp_path):
    """Without SMTP_CA_FILE the throwaway CA is unknown: the certificate must not be trusted."""
    with smtp_server(tmp_path) as server:
        settings = _settings(server, tmp_path, smtp_ca_file=None)
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "failed"
    assert "certificate does not verify" in attempt.error and "SMTP_CA_FILE" in attempt.error
    assert server.messages == [] and server.logins == []


def test_unreachable_server_is_worth_a_retry(tmp_path):
    from tests.support.servers import free_port

    settings = load_settings(database_path=tmp_path / "db.sqlite", smtp_host="127.0.0.1", smtp_port=free_port(),
                             smtp_from="monitor@example.com", smtp_to="oncall@example.com", notify_timeout_seconds=2)
    attempt = send_email(settings, _message(settings))
    assert attempt.status == "retry"
    assert "ConnectionRefusedError" in attempt.error


def test_server_without_starttls_is_not_sent_to_in_the_clear(tmp_path):
    with smtp_server(tmp_path, tls="none") as server:
        settings = _settings(server, tmp_path)
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "failed"
    assert "does not support" in attempt.error and "SMTP_SECURITY" in attempt.error
    assert server.messages == [] and server.logins == []


def test_security_none_sends_without_tls_when_asked(tmp_path):
    with smtp_server(tmp_path, tls="none") as server:
        settings = _settings(server, tmp_path, smtp_security="none", smtp_username=None)
        attempt = send_email(settings, _message(settings))
    assert attempt.status == "sent"
    assert len(server.messages) == 1


def test_a_login_without_tls_to_another_host_is_refused_at_start(tmp_path, monkeypatch):
    from shared.core.settings import ConfigError

    for name, value in (("SMTP_HOST", "mail.example.com"), ("SMTP_SECURITY", "none"),
                        ("SMTP_USERNAME", "monitor"), ("SMTP_PASSWORD", "s3cret-smtp-pass")):
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings(database_path=tmp_path / "db.sqlite")
    message = str(refused.value)
    assert "SMTP_SECURITY: none with SMTP_USERNAME set would send the SMTP login and password in clear to " \
           "mail.example.com; use starttls (port 587) or ssl (port 465)" in message
    assert "s3cret-smtp-pass" not in message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_a_login_without_tls_to_a_local_relay_is_allowed(tmp_path, host):
    settings = load_settings(database_path=tmp_path / "db.sqlite", smtp_host=host, smtp_security="none",
                             smtp_username="monitor", smtp_password="pass")
    assert (settings.smtp_security, settings.smtp_port) == ("none", 25)


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)])
def test_smtp_port_follows_smtp_security_unless_set(tmp_path, monkeypatch, security, port):
    monkeypatch.delenv("SMTP_PORT", raising=False)
    monkeypatch.setenv("SMTP_SECURITY", security)
    assert load_settings(database_path=tmp_path / "db.sqlite").smtp_port == port
    monkeypatch.setenv("SMTP_PORT", "2525")
    assert load_settings(database_path=tmp_path / "db.sqlite").smtp_port == 2525


def test_the_html_part_escapes_alert_text_and_links_only_to_web_addresses():
    hostile = Alert("Hostile<b>", "warning", {"alertname": "Hostile<b>", "severity": "warning",
                                              "pod": "<script>alert(1)</script>"},
                    "summary <img src=x onerror=alert(1)>", "description & <i>more</i>", 1_767_225_600.0,
                    generator_url="javascript:alert(1)")
    message = email_message(AlertGroup("warning", [hostile], external_url="http://am.example/#/alerts?x=<y>"),
                            "monitor@example.com", ("ops@example.com",), 1_767_225_600.0, cluster="prod<eu>")
    page = message.get_body(("html",)).get_content()
    for raw in ("<script>", "<img", "<i>", "Hostile<b>", "prod<eu>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "description &amp; &lt;i&gt;more&lt;/i&gt;" in page
    assert "prod&lt;eu&gt;" in page
    assert "javascript:" not in page, "only http(s) generator URLs become links"
    assert 'href="http://am.example/#/alerts?x=&lt;y&gt;"' in page
