"""Logs as an operator's log pipeline reads them: one JSON object per line, ids attached, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.core.logs import configure_logging, log_context, redact, register_secrets
from tests.support.functions import get, post
from tests.support.servers import free_port, function_server

SLACK_URL = "https://hooks.slack.com/services/T0LOGTEST/B0LOGTEST/logtestslacksecret"
PASSWORD = 'pa"ss\\word-logtest'  # quotes and a backslash: JSON escapes them, the mask must still hit
UNREGISTERED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.unregisteredtokenbody"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured into a buffer; the root logger is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def lines_of(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_a_json_line_carries_every_field_and_the_ids_of_the_run(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", stream)
    with log_context(function_name="collect", event_id="tick-7"), log_context(run_id=12):
        logging.getLogger("shared.domain.collection").info("collection %s: %d pods", "ok", 40)

    (line,) = lines_of(stream)
    record = json.loads(line)
    assert record["message"] == "collection ok: 40 pods"
    assert record["level"] == "INFO"
    assert record["logger"] == "shared.domain.collection"
    assert record["module"] == "test_logs"
    assert record["function"] == "test_a_json_line_carries_every_field_and_the_ids_of_the_run"
    assert isinstance(record["line"], int)
    assert record["timestamp"].endswith("+00:00")
    assert (record["run_id"], record["event_id"], record["function_name"]) == (12, "tick-7", "collect")
    assert "exception" not in record


def test_an_exception_is_one_json_line_with_its_traceback(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", stream)
    try:
        raise ValueError("bad quantity '12Qi'")
    except ValueError:
        logging.getLogger("shared.sources.inventory").exception("cannot parse a pod")

    (line,) = lines_of(stream)
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["exception"].startswith("Traceback (most recent call last)")
    assert "ValueError: bad quantity '12Qi'" in record["exception"]


def test_an_id_given_with_extra_wins_over_the_context(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", stream)
    with log_context(run_id=1):
        logging.getLogger("x").info("stored", extra={"run_id": 2})
    assert json.loads(lines_of(stream)[0])["run_id"] == 2


def test_log_level_drops_lower_lines_and_text_format_shows_the_ids(stream: io.StringIO) -> None:
    configure_logging("WARNING", "text", stream)
    log = logging.getLogger("shared.domain.collection")
    with log_context(run_id=5, function_name="collect"):
        log.info("not shown")
        log.warning("retrying list pods")

    (line,) = lines_of(stream)
    assert "WARNING shared.domain.collection: retrying list pods [run_id=5 function_name=collect]" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_python_warnings_come_out_as_json_lines(stream: io.StringIO) -> None:
    import warnings

    configure_logging("INFO", "json", stream)
    warnings.warn("Unverified HTTPS request", UserWarning, stacklevel=1)
    (line,) = lines_of(stream)
    record = json.loads(line)
    assert record["logger"] == "py.warnings"
    assert "Unverified HTTPS request" in record["message"]


def test_secrets_never_reach_a_log_line_wherever_they_hide(stream: io.StringIO) -> None:
    register_secrets([SLACK_URL, PASSWORD, None])
    configure_logging("INFO", "json", stream)
    log = logging.getLogger("shared.notify")
    slack_path = SLACK_URL.removeprefix("https://hooks.slack.com")

    log.warning("posting to %s failed", SLACK_URL)
    # requests quotes only the path of the URL it could not reach
    log.warning("HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries exceeded with url: %s",
                slack_path)
    log.info("login refused", extra={"attempt": {"password": PASSWORD, "user": "monitor"}})
    log.info("sent Authorization: Bearer %s", UNREGISTERED_TOKEN)
    log.info("querying http://monitor:%s@prometheus:9090/api/v1/query", "hunter2-not-registered")
    try:
        raise ConnectionError(f"SMTP login with {PASSWORD!r} refused")
    except ConnectionError:
        log.exception("email failed")

    text = stream.getvalue()
    records = [json.loads(line) for line in lines_of(stream)]
    assert len(records) == 6
    for secret in (SLACK_URL, slack_path, PASSWORD, json.dumps(PASSWORD)[1:-1], repr(PASSWORD)[1:-1],
                   UNREGISTERED_TOKEN, "hunter2-not-registered", "logtestslacksecret"):
        assert secret not in text
    assert records[0]["message"] == "posting to [REDACTED] failed"
    assert records[2]["attempt"] == {"password": "[REDACTED]", "user": "monitor"}
    assert records[3]["message"] == "sent Authorization: Bearer [REDACTED]"
    assert "http://monitor:[REDACTED]@prometheus:9090" in records[4]["message"]
    assert "[REDACTED]" in records[5]["exception"]


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "an optional bearer token protects the endpoint; see http://prometheus:9090/graph"
    assert redact(text) == text


SERVER_SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0SRVTEST/B0SRVTEST/serversecretslackpath",
    "SMTP_PASSWORD": "smtp-Pass-serversecret-42",
    "ALERT_WEBHOOK_TOKEN": "alert-token-serversecret-9000",
    "PROMETHEUS_BEARER_TOKEN": "prom-bearer-serversecret-777",
}


def json_lines(path: Path) -> list[dict]:
    """Every line the server wrote (stdout and stderr), each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line the function wrote is not JSON: {line!r}")
    return records


def test_secrets_never_appear_in_logs_or_answers_even_inside_errors(tmp_path: Path) -> None:
    slack_path = urlsplit(SERVER_SECRETS["SLACK_WEBHOOK_URL"]).path
    password, token = SERVER_SECRETS["SMTP_PASSWORD"], SERVER_SECRETS["ALERT_WEBHOOK_TOKEN"]
    env = {
        **SERVER_SECRETS,
        "DATABASE_PATH": str(tmp_path / "data" / "k8s_metrics.db"),
        "KUBECONFIG": str(tmp_path / token / "kubeconfig"),  # missing: the error quotes its path
        "PROMETHEUS_URL": f"http://monitor:{password}@127.0.0.1:{free_port()}{slack_path}",  # unreachable
        "LOG_FORMAT": "json",
    }
    bodies = []
    with function_server("collect", env, log_path=tmp_path / "collect.log") as url:
        failed = post(url, json={})
        refused = post(url, json={"namespaces": [SERVER_SECRETS["SLACK_WEBHOOK_URL"]]})
        bodies += [failed.text, refused.text]
    with function_server("health", env, log_path=tmp_path / "health.log") as url:
        health = get(f"{url}/health")
        unknown = get(f"{url}/{SERVER_SECRETS['PROMETHEUS_BEARER_TOKEN']}")
        bodies += [health.text, unknown.text]
        bodies += [get(f"{url}{path}").text for path in ("/health/readiness", "/metrics")]
    collect_log, health_log = json_lines(tmp_path / "collect.log"), json_lines(tmp_path / "health.log")

    # the errors did carry the secrets, masked
    assert (failed.status_code, refused.status_code, health.status_code, unknown.status_code) == (500, 400, 200, 404)
    assert "KUBECONFIG=" in failed.json()["error"] and "[REDACTED]" in failed.json()["error"]
    assert "[REDACTED]" in refused.json()["error"]
    prometheus_error = health.json()["checks"]["prometheus"]["error"]
    assert prometheus_error.startswith("Prometheus at http://monitor:[REDACTED]@127.0.0.1:")
    assert "[REDACTED]" in health.json()["checks"]["collection"]["last_run_error"]
    assert "[REDACTED]" in unknown.json()["error"]
    everything = "\n".join(bodies + [(tmp_path / name).read_text() for name in ("collect.log", "health.log")])
    for secret in (*SERVER_SECRETS.values(), slack_path):
        assert secret not in everything
    # and the logs are there, with the ids that tie them to a run and a function
    failure = next(r for r in collect_log if r["message"].startswith("collection failed"))
    assert (failure["level"], failure["run_id"], failure["function_name"]) == (
        "ERROR", failed.json()["run_id"], "collect")
    assert any(r["function_name"] == "health" and "[REDACTED]" in r["message"] for r in health_log)
