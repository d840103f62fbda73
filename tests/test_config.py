"""Settings come from the environment; a bad value names its variable."""

import pytest

from shared.core.settings import ConfigError, load_settings


def test_defaults_match_the_documented_table(monkeypatch):
    for name in ("DATABASE_PATH", "PROMETHEUS_URL", "COLLECT_INTERVAL_SECONDS", "NAMESPACES_INCLUDE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert str(settings.database_path) == "/data/k8s_metrics.db"
    assert settings.prometheus_url == "http://prometheus:9090"
    assert settings.collect_interval_seconds == 300
    assert settings.namespaces_include == ()
    assert (settings.retention_raw_days, settings.retention_hourly_days, settings.backup_retention_days) == (7, 90, 7)


def test_comma_separated_namespaces(monkeypatch):
    monkeypatch.setenv("NAMESPACES_INCLUDE", "team-a, team-b,,")
    monkeypatch.setenv("NAMESPACES_EXCLUDE", "kube-system")
    settings = load_settings()
    assert settings.namespaces_include == ("team-a", "team-b")
    assert settings.namespaces_exclude == ("kube-system",)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("COLLECT_INTERVAL_SECONDS", "five", "COLLECT_INTERVAL_SECONDS"),
        ("COLLECT_INTERVAL_SECONDS", "5", "COLLECT_INTERVAL_SECONDS: Input should be greater than or equal to 30"),
        ("PROMETHEUS_URL", "prometheus:9090", "PROMETHEUS_URL: must start with http:// or https://"),
        ("SMTP_SECURITY", "tls", "SMTP_SECURITY"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("ALERT_ROUTE_CRITICAL", "slack,pager", "ALERT_ROUTE_CRITICAL: unknown channel(s) pager"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert expected in str(error.value)


def test_secret_is_read_from_its_file_and_never_shown(monkeypatch, tmp_path):
    secret = tmp_path / "slack"
    secret.write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    monkeypatch.setenv("SLACK_WEBHOOK_URL_FILE", str(secret))
    settings = load_settings()
    assert settings.slack_webhook_url.get_secret_value() == "https://hooks.slack.example/T000/B000/XXXX"
    assert "XXXX" not in repr(settings)


def test_unreadable_secret_file_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="SMTP_PASSWORD_FILE: cannot read"):
        load_settings()


def test_secret_values_are_not_echoed_in_errors(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL_FILE", "/nonexistent")
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "x" * 10)
    monkeypatch.setenv("SMTP_PORT", "not-a-port")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "xxxxxxxxxx" not in str(error.value)
