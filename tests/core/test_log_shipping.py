"""The log shipping examples (docs/logging/) against real log lines of the collect function, so the
examples cannot silently rot: Fluent Bit's parser and Filebeat's ndjson decoding must turn every line
into fields, with the monitor's own timestamp as the event time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path

import pytest
import requests
import yaml

from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import Scenario
from tests.conftest import FakeClock
from tests.support.servers import REPO, function_server

DOCS = REPO / "docs" / "logging"
CONTAINER_ID = "4f1c2a9e" * 8
# What the kubelet writes in /var/log/containers for a Knative revision's pod: the function and its sidecar.
FUNCTION_LOG = f"collect-00001-deployment-6d9f7c5b4-x2k9q_monitoring_collect-{CONTAINER_ID}.log"
SIDECAR_LOG = f"collect-00001-deployment-6d9f7c5b4-x2k9q_monitoring_queue-proxy-{CONTAINER_ID}.log"
OTHER_LOG = f"prometheus-k8s-0_monitoring_prometheus-{CONTAINER_ID}.log"


@pytest.fixture(scope="module")
def log_lines(small_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """What the collect function's container wrote on stdout: a PingSource tick, then a bad plain POST."""
    tmp = tmp_path_factory.mktemp("logs")
    with SimulatedCluster(small_scenario, clock=FakeClock()) as cluster:
        env = {"DATABASE_PATH": str(tmp / "k8s_metrics.db"), "KUBECONFIG": str(cluster.write_kubeconfig(tmp / "kube")),
               "PROMETHEUS_URL": cluster.prometheus_url, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
               "NAMESPACES_INCLUDE": "", "SLACK_WEBHOOK_URL": "", "SMTP_HOST": ""}
        with function_server("collect", env, log_path=tmp / "stdout.log") as url:
            tick = requests.post(url, data="{}", timeout=60, headers={
                "Connection": "close", "Content-Type": "application/json", "Ce-Specversion": "1.0",
                "Ce-Type": "dev.knative.sources.ping", "Ce-Id": "tick-1",
                "Ce-Source": "/apis/v1/namespaces/monitoring/pingsources/collect-schedule"})
            plain = requests.post(url, json={"namespaces": ["no such namespace"]}, timeout=60,
                                  headers={"Connection": "close"})
        assert tick.status_code == 200, tick.text
        assert plain.status_code == 400  # a bad request is logged too
    yield [line for line in (tmp / "stdout.log").read_text().splitlines() if line.strip()]


def fluent_bit_sections(path: Path) -> list[tuple[str, dict[str, str]]]:
    """A classic-format Fluent Bit file as (section name, {key: value}) in order."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], {}))
            continue
        key, _, value = line.partition(" ")
        sections[-1][1][key.lower()] = value.strip()
    return sections


def strptime_format(fluent_bit_format: str) -> str:
    """Fluent Bit's Time_Format in Python's terms: `%L` is the fraction of a second."""
    return fluent_bit_format.replace("%L", "%f")


def go_layout_format(layout: str) -> str:
    """A Go time layout (Filebeat's timestamp processor) in Python's strptime terms."""
    for go, python in ((".999999", ".%f"), ("Z07:00", "%z"), ("2006", "%Y"), ("01", "%m"), ("02", "%d"),
                       ("15", "%H"), ("04", "%M"), ("05", "%S")):
        layout = layout.replace(go, python)
    return layout


def test_every_line_of_the_function_is_one_json_object_with_the_fields_to_filter_on(log_lines: list[str]) -> None:
    records = [json.loads(line) for line in log_lines]  # a line that is not JSON fails here

    assert records and all(isinstance(record, dict) for record in records)
    for record in records:
        assert {"timestamp", "level", "logger", "message", "module", "function", "line"} <= set(record), record
    done = [r for r in records if r["message"].startswith("collection ok")]
    assert len(done) == 1
    assert done[0]["level"] == "INFO" and done[0]["logger"] == "shared.domain.collection"
    assert isinstance(done[0]["run_id"], int) and done[0]["event_id"] == "tick-1"
    assert done[0]["function_name"] == "collect"
    (refused,) = [r for r in records if r["message"].startswith("bad request: invalid collect request")]
    assert refused["level"] == "WARNING" and refused["function_name"] == "collect" and "event_id" not in refused


def test_the_fluent_bit_parser_reads_every_line_and_its_timestamp(log_lines: list[str]) -> None:
    parsers = {values["name"]: values for section, values in fluent_bit_sections(DOCS / "parsers.conf")
               if section == "PARSER"}
    config = fluent_bit_sections(DOCS / "fluent-bit.conf")
    (kubernetes,) = [values for section, values in config if section == "FILTER" and values["name"] == "kubernetes"]
    (service,) = [values for section, values in config if section == "SERVICE"]

    assert service["parsers_file"] == "parsers.conf"
    assert (kubernetes["merge_log"], kubernetes["keep_log"]) == ("On", "Off")
    parser = parsers[kubernetes["merge_parser"]]
    assert parser["format"] == "json"
    for line in log_lines:
        record = json.loads(line)
        stamp = record[parser["time_key"]]
        parsed = datetime.strptime(stamp, strptime_format(parser["time_format"]))
        assert parsed == datetime.fromisoformat(stamp), stamp
        assert parsed.utcoffset() is not None  # the zone is read, not assumed


def test_fluent_bit_tails_the_functions_and_not_their_sidecars(log_lines: list[str]) -> None:
    (tail,) = [values for section, values in fluent_bit_sections(DOCS / "fluent-bit.conf")
               if section == "INPUT" and values["name"] == "tail"]
    patterns = [Path(pattern).name for pattern in tail["path"].split(",")]

    assert all(Path(pattern).parent == Path("/var/log/containers") for pattern in tail["path"].split(","))
    assert any(fnmatch(FUNCTION_LOG, pattern) for pattern in patterns)
    assert not any(fnmatch(name, pattern) for pattern in patterns for name in (SIDECAR_LOG, OTHER_LOG))
    assert {pattern.split("-")[0] for pattern in patterns} == {"collect", "health", "backup", "alert", "report"}


def test_filebeat_puts_every_key_at_the_top_and_reads_the_timestamp(log_lines: list[str]) -> None:
    config = yaml.safe_load((DOCS / "filebeat.yml").read_text())
    (stream,) = config["filebeat.inputs"]
    parsers = {name: options for parser in stream["parsers"] for name, options in parser.items()}
    ndjson = parsers["ndjson"]
    (timestamp,) = [p["timestamp"] for p in stream["processors"] if "timestamp" in p]
    layouts = [go_layout_format(layout) for layout in timestamp["layouts"]]

    assert stream["type"] == "filestream" and list(parsers) == ["container", "ndjson"]
    assert ndjson["target"] == "" and ndjson["overwrite_keys"] is True  # keys under root, ours win
    for example in timestamp["test"]:
        assert any(_parses(example, layout) for layout in layouts), example
    for line in log_lines:
        event = {"message": line}  # what the container parser hands on
        decoded = json.loads(event[ndjson["message_key"]])
        event.update(decoded)
        assert timestamp["field"] in event
        assert any(_parses(event[timestamp["field"]], layout) for layout in layouts), event[timestamp["field"]]
        assert event["message"] == decoded["message"]  # the raw line replaced by the monitor's message
        for key in ("level", "logger", "run_id", "event_id", "function_name"):
            if key in decoded:
                assert event[key] == decoded[key]
    assert any(fnmatch(FUNCTION_LOG, Path(p).name) for p in stream["paths"])
    assert not any(fnmatch(SIDECAR_LOG, Path(p).name) for p in stream["paths"])


def _parses(text: str, strptime_format: str) -> bool:
    try:
        return datetime.strptime(text, strptime_format) == datetime.fromisoformat(text)
    except ValueError:
        return False


def test_the_readme_points_at_both_examples() -> None:
    readme = (REPO / "README.md").read_text()

    for name in ("fluent-bit.conf", "parsers.conf", "filebeat.yml"):
        assert f"docs/logging/{name}" in readme
        assert (DOCS / name).is_file()
