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


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"PROMETHEUS_SELECTOR": "job=kubelet"}, "PROMETHEUS_SELECTOR: expected a quoted value at character 5"),
        ({"PROMETHEUS_SELECTOR": 'job="kubelet"}or{x="'}, "PROMETHEUS_SELECTOR: expected ',' between matchers"),
        ({"PROMETHEUS_SELECTOR": '__name__="up"'}, "PROMETHEUS_SELECTOR: must not match __name__"),
        ({"PROMETHEUS_CLUSTER_LABEL": "cluster name"}, "PROMETHEUS_CLUSTER_LABEL: must be a label name"),
        ({"PROMETHEUS_CLUSTER_LABEL": "cluster"}, "CLUSTER_NAME: PROMETHEUS_CLUSTER_LABEL=cluster limits every query"),
        ({"PROMETHEUS_HEADERS": "X-Scope-OrgID"}, "PROMETHEUS_HEADERS: pair 1 has no '='"),
        ({"PROMETHEUS_HEADERS": "X-Scope-OrgID=a,Bad Name=b"},
         "PROMETHEUS_HEADERS: pair 2: 'Bad Name' is not a header"),
        ({"PROMETHEUS_HEADERS": "Host=evil"}, "PROMETHEUS_HEADERS: pair 1: Host is set by the HTTP client itself"),
        ({"PROMETHEUS_PASSWORD": "pw"}, "PROMETHEUS_PASSWORD: set PROMETHEUS_USERNAME too"),
        ({"PROMETHEUS_USERNAME": "u", "PROMETHEUS_BEARER_TOKEN": "t" * 20},
         "PROMETHEUS_USERNAME: basic auth and PROMETHEUS_BEARER_TOKEN(_FILE) are both set"),
        ({"PROMETHEUS_CA_FILE": "/nonexistent/ca.pem"}, "PROMETHEUS_CA_FILE: cannot read /nonexistent/ca.pem"),
        ({"PROMETHEUS_CA_FILE": "/etc/hostname"}, "PROMETHEUS_CA_FILE: /etc/hostname holds no PEM certificate"),
        ({"PROMETHEUS_PATH_PREFIX": "prometheus"}, "PROMETHEUS_PATH_PREFIX: must be a path starting with /"),
        ({"PROMETHEUS_TLS_INSECURE_SKIP_VERIFY": "maybe"}, "PROMETHEUS_TLS_INSECURE_SKIP_VERIFY"),
        ({"PROMETHEUS_MAX_CONCURRENCY": "0"}, "PROMETHEUS_MAX_CONCURRENCY: Input should be greater than or equal to 1"),
        ({"PROMETHEUS_BEARER_TOKEN_FILE": "/nonexistent/token"}, "PROMETHEUS_BEARER_TOKEN_FILE: cannot read"),
        ({"METRIC_CPU_USAGE": 'up or vector(1)'}, "METRIC_CPU_USAGE: must be a metric name"),
        ({"LABEL_POD": "pod)"}, "LABEL_POD: must be a label name"),
        ({"CLUSTER_NAME": "prod\neu"}, "CLUSTER_NAME: must be at most 253 characters, without control characters"),
    ],
)
def test_a_bad_prometheus_setup_value_names_its_variable(monkeypatch, variables, expected):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert expected in str(error.value)


def test_header_values_are_secrets_never_echoed_and_each_is_masked(monkeypatch, tmp_path):
    headers = tmp_path / "headers"
    headers.write_text("X-Scope-OrgID=tenant-one, X-Api-Key=key-value-12345\n")
    monkeypatch.setenv("PROMETHEUS_HEADERS_FILE", str(headers))
    settings = load_settings()
    assert settings.prometheus_header_values() == {"X-Scope-OrgID": "tenant-one", "X-Api-Key": "key-value-12345"}
    assert "key-value-12345" in settings.secret_values()
    assert not any("tenant-one" in secret for secret in settings.secret_values())  # a tenant id names: not masked
    assert "key-value-12345" not in repr(settings)
    monkeypatch.setenv("PROMETHEUS_HEADERS", "X-Api-Key=key-value-12345,no-equals-here")
    monkeypatch.delenv("PROMETHEUS_HEADERS_FILE")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "key-value-12345" not in str(error.value) and "pair 2" in str(error.value)


def test_cluster_name_defaults_to_the_kubeconfig_context_cluster_else_default(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\ncurrent-context: admin@prod\n"
        "contexts:\n- name: admin@prod\n  context: {cluster: prod-eu-1, user: admin}\n"
        "- name: dev\n  context: {cluster: kind-dev, user: dev}\n")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("CLUSTER_NAME", raising=False)
    assert load_settings(kubeconfig=kubeconfig).cluster_name == "prod-eu-1"
    assert load_settings(kubeconfig=kubeconfig, kube_context="dev").cluster_name == "kind-dev"
    assert load_settings(kubeconfig=kubeconfig, cluster_name="chosen").cluster_name == "chosen"
    assert load_settings(kubeconfig=tmp_path / "missing").cluster_name == "default"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # in a pod: no kubeconfig is read
    assert load_settings().cluster_name == "default"


def test_a_bad_value_stops_the_command_at_start_naming_the_variable(tmp_path):
    from tests.support.functions import k8s_monitor

    done = k8s_monitor(["collect"], {"DATABASE_PATH": str(tmp_path / "db"), "PROMETHEUS_SELECTOR": 'job="a" x'})

    assert done.returncode != 0
    assert "PROMETHEUS_SELECTOR: expected ',' between matchers" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "db").exists()


def test_the_configmaps_commented_prometheus_examples_are_valid_settings():
    """common/base/config.yaml shows the Prometheus-setup settings commented out: uncommented, they load."""
    import re

    import yaml

    from shared.core.settings import Settings
    from tests.support.servers import REPO

    text = (REPO / "common" / "base" / "config.yaml").read_text()
    examples = dict(re.findall(r"^  # ([A-Z][A-Z0-9_]+): (.+)$", text, re.MULTILINE))
    assert {"CLUSTER_NAME", "PROMETHEUS_CLUSTER_LABEL", "PROMETHEUS_SELECTOR", "PROMETHEUS_PATH_PREFIX"} <= set(
        examples)
    assert {name.lower() for name in examples} <= set(Settings.model_fields)
    data = yaml.safe_load(text)["data"]
    values = {name.lower(): yaml.safe_load(value) for name, value in {**data, **examples}.items()}
    settings = load_settings(**values)
    assert settings.prometheus_cluster_label == "cluster" and settings.cluster_name == "prod-eu-1"
    assert [str(matcher) for matcher in settings.prometheus_selector] == [
        'job="kubelet"', 'metrics_path="/metrics/cadvisor"']
