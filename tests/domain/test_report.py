"""The report over stored samples: its numbers, recommendations, filters, formats and the CLI table."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pytest

from shared.cli import main as cli_main
from shared.core.settings import Settings, load_settings
from shared.domain.errors import InvalidInput
from shared.domain.report.build import NO_DATA, build_report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.output import report_csv, report_json
from shared.domain.report.query import parse_report_query
from shared.domain.report.summary import summarize
from shared.entry.report import report_answer
from shared.store.connection import connect
from shared.store.window_usage import parse_window
from tests.support.report_history import History, MiB, Sample, random_history, reference_report

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC, on a collection


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Settings]]:
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", collect_interval_seconds=300)
    conn = connect(settings.database_path)
    yield conn, settings
    conn.close()


def report(conn: sqlite3.Connection, settings: Settings, **params: str) -> dict:
    query = parse_report_query(params, settings, NOW)
    return report_json(build_report(conn, query, settings, NOW))


def by_container(body: dict) -> dict[tuple[str, str, str], dict]:
    return {(c["namespace"], c["workload_name"], c["container"]): c for c in body["containers"]}


def test_recommendations_equal_hand_computed_values(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    tiny = history.container("shop", "Deployment", "tiny", "app")
    young = history.container("shop", "Job", "young", "app")
    for step in range(20):  # 20 samples, 5 minutes apart, ending now: CPU 5m, 10m, ... 100m
        ts = NOW - (19 - step) * 300
        history.add(api, ts, Sample(cpu_usage_avg_millicores=5 * (step + 1),
                                    memory_working_set_max_bytes=200 * MiB if step == 7 else 100 * MiB))
        history.add(tiny, ts, Sample(cpu_usage_avg_millicores=1 + step % 3, memory_working_set_max_bytes=5 * MiB))
        if step >= 10:
            history.add(young, ts, Sample())

    body = report(conn, settings, window="6h", sort="name")
    containers = by_container(body)
    api_row, tiny_row, young_row = (containers[("shop", name, "app")] for name in ("api", "tiny", "young"))

    # p95 by nearest rank: the 19th of 20 sorted values; memory: 200Mi + 15% = 230Mi
    assert api_row["cpu_usage_p95_millicores"] == 95
    assert api_row["recommended_cpu_request_millicores"] == 95
    assert api_row["recommended_memory_request_bytes"] == api_row["recommended_memory_limit_bytes"] == 230 * MiB
    assert api_row["reasons"]["recommended_cpu_request_millicores"] == "p95 of 20 samples over 1.7h"
    assert api_row["reasons"]["recommended_memory_request_bytes"] == \
        "max working set 200Mi over 1.7h (20 samples) + 15% headroom"
    # 20 samples x 5 minutes cover the 100 minutes with data: one pod, idle = 500m - average 52.5m
    assert api_row["cpu_usage_avg_millicores"] == 52.5
    assert api_row["pods_avg"] == 1.0
    assert api_row["cpu_idle_millicores"] == 447.5
    assert body["window"]["span_seconds"] == 6000

    assert tiny_row["recommended_cpu_request_millicores"] == 10  # p95 is 3m: the floor
    assert tiny_row["recommended_memory_request_bytes"] == 16 * MiB  # 5Mi + 15% is below the floor
    assert tiny_row["reasons"]["recommended_cpu_request_millicores"] == \
        "floor of 10m: p95 of 20 samples over 1.7h is 3m"

    assert young_row["recommended_cpu_request_millicores"] is None
    assert young_row["recommended_memory_request_bytes"] is None
    assert young_row["reasons"]["recommended_cpu_request_millicores"].startswith(
        "not enough data: 10 CPU usage samples over 1.7h, at least 12 needed")


def test_report_numbers_equal_an_independent_computation_over_the_raw_samples(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=60)
    body = report(conn, settings, window="2d", limit="all")
    window = parse_window("2d", NOW, 90)
    assert body["window"]["span_seconds"] == 60 * 3600  # 720 runs of 5 minutes
    expected = reference_report(conn, window.start, window.end)
    got = by_container(body)
    assert set(got) == set(expected) and len(got) == 9
    for key, want in expected.items():
        row = got[key]
        for name in ("cpu_samples", "memory_samples", "cpu_request_millicores", "cpu_limit_millicores",
                     "memory_request_bytes", "memory_limit_bytes", "cpu_usage_p95_millicores",
                     "cpu_usage_max_millicores", "memory_working_set_max_bytes", "cpu_throttled_ratio_max",
                     "oom_killed"):
            assert row[name] == want[name], (key, name)
        for name, tolerance in (("cpu_usage_avg_millicores", 0.05), ("cpu_idle_millicores", 0.05),
                                ("memory_working_set_avg_bytes", 0.5), ("memory_idle_bytes", 0.5),
                                ("pods_avg", 0.005)):
            assert row[name] == pytest.approx(want[name], abs=tolerance), (key, name)
    cluster = body["cluster"]
    assert cluster["containers"] == 9
    for name, figure, tolerance in (("cpu_idle_millicores", "cpu_idle_millicores", 0.1),
                                    ("cpu_requested_millicores", "cpu_requested_avg_millicores", 0.1),
                                    ("cpu_used_millicores", "cpu_used_avg_millicores", 0.1),
                                    ("memory_requested_bytes", "memory_requested_avg_bytes", 1),
                                    ("memory_used_bytes", "memory_used_avg_bytes", 1)):
        assert cluster[name] == pytest.approx(sum(w[figure] for w in expected.values()), abs=tolerance), name
    assert sum(t["containers"] for t in body["namespaces"].values()) == 9


def report_at(conn: sqlite3.Connection, settings: Settings, now: float, **params: str) -> dict:
    return report_json(build_report(conn, parse_report_query(params, settings, now), settings, now))


def test_averages_over_time_are_over_the_seconds_the_runs_cover_whenever_the_report_is_asked(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    # One pod requesting 500m at every run: an hour collected every 5 minutes using 100m, a pause of
    # two hours (with a failed run), then an hour collected every 10 minutes (window 600 s, while the
    # setting now says 300 s) using 400m.
    conn, settings = db
    history = History(conn)
    app = history.container("shop", "Deployment", "api", "app")
    start = NOW - 4 * 3600
    for step in range(12):
        history.add(app, start + step * 300, Sample(cpu_usage_avg_millicores=100))
    history.failed_run(start + 2 * 3600)
    history.window_seconds = 600
    for step in range(6):
        history.add(app, start + 3 * 3600 + step * 600, Sample(cpu_usage_avg_millicores=400))
    last = start + 3 * 3600 + 5 * 600

    asked = {later: report_at(conn, settings, last + later, window="6h") for later in (0, 1800, 3600, 5400)}

    for later, body in asked.items():
        cluster, row = body["cluster"], body["containers"][0]
        assert body["window"]["span_seconds"] == 12 * 300 + 6 * 600, later  # the pause and failed run: nothing
        assert (cluster["cpu_requested_millicores"], cluster["memory_requested_bytes"]) == (500, 256 * MiB), later
        assert (cluster["cpu_used_millicores"], cluster["memory_used_bytes"]) == (250, 100 * MiB), later
        assert (row["pods_avg"], row["cpu_usage_avg_millicores"], row["cpu_idle_millicores"]) == (1, 250, 250), later
        assert row["reasons"]["recommended_cpu_request_millicores"] == "p95 of 18 samples over 2h", later
        for part in ("cluster", "namespaces", "workloads", "containers"):
            assert body[part] == asked[0][part], (later, part)


def test_runs_of_a_few_namespaces_cover_the_time_of_those_namespaces_only(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    # Two schedules, each collecting one namespace every 5 minutes, a minute apart.
    conn, settings = db
    history = History(conn)
    shop, payments = (history.container(namespace, "Deployment", "api", "app") for namespace in ("shop", "payments"))
    for step in range(12):
        history.namespaces = "shop"
        history.add(shop, NOW - step * 300, Sample())
        history.namespaces = "payments,batch"
        history.add(payments, NOW - 60 - step * 300, Sample())

    body = report(conn, settings, window="2h")

    assert body["cluster"]["cpu_requested_millicores"] == 1000
    assert {name: t["cpu_requested_millicores"] for name, t in body["namespaces"].items()} == \
        {"payments": 500, "shop": 500}
    assert [c["pods_avg"] for c in body["containers"]] == [1, 1]
    assert body["window"]["span_seconds"] == 3600


def test_only_running_samples_count_for_usage(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    app = history.container("shop", "Deployment", "api", "app")
    for step in range(12):
        history.add(app, NOW - step * 300, Sample(cpu_usage_avg_millicores=100))
        history.add(app, NOW - step * 300, Sample(cpu_usage_avg_millicores=5000, phase="Succeeded", pod="done"))
    row = report(conn, settings, window="2h")["containers"][0]
    assert (row["cpu_samples"], row["cpu_usage_avg_millicores"], row["cpu_usage_p95_millicores"]) == (12, 100, 100)


def test_risk_flags_say_what_is_wrong(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    cases = {
        "oom": Sample(restart_count=4, last_termination_reason="OOMKilled"),
        "oom-event": Sample(oom_events=1),
        "throttled": Sample(cpu_throttled_ratio=0.4),
        "near": Sample(memory_working_set_max_bytes=470 * MiB),  # 92% of 512Mi
        "besteffort": Sample(cpu_request_millicores=None, memory_request_bytes=None, cpu_limit_millicores=None,
                             memory_limit_bytes=None),
        "healthy": Sample(),
    }
    for name, sample in cases.items():
        container = history.container("shop", "Deployment", name, "app")
        for step in range(12):
            history.add(container, NOW - step * 300, sample)
    flags = {key[1]: {f["flag"]: f["reason"] for f in row["flags"]}
             for key, row in by_container(report(conn, settings, window="1h")).items()}
    assert flags["oom"] == {"oom_killed": "OOM-killed: last termination reason OOMKilled (kept by Kubernetes until "
                                          "the next restart, so it may be older), restart count 4"}
    assert flags["oom-event"] == {"oom_killed": "OOM-killed: 12 OOM events in the window"}
    assert flags["throttled"] == {
        "cpu_throttled": "throttled in up to 40% of CPU periods (ALERT_CPU_THROTTLED_RATIO 25%)"}
    assert flags["near"] == {"memory_near_limit": "peak working set 470Mi is 92% of its 512Mi limit "
                                                  "(ALERT_MEMORY_NEAR_LIMIT_RATIO 90%)"}
    assert flags["besteffort"] == {"no_requests": "no CPU or memory request: the scheduler reserves nothing",
                                   "no_limits": "no CPU or memory limit"}
    assert flags["healthy"] == {}


def test_the_cpu_percentile_of_recommendations_is_configurable(tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "db", report_cpu_percentile=50)
    conn = connect(settings.database_path)
    history = History(conn)
    app = history.container("shop", "Deployment", "api", "app")
    for step in range(20):
        history.add(app, NOW - step * 300, Sample(cpu_usage_avg_millicores=10 * (step + 1)))
    row = report(conn, settings, window="2h")["containers"][0]
    assert row["cpu_usage_p95_millicores"] == 190
    assert row["recommended_cpu_request_millicores"] == 100  # the 10th of 20 values
    assert row["reasons"]["recommended_cpu_request_millicores"] == "p50 of 20 samples over 1.7h"
    conn.close()


def test_filters_select_a_namespace_or_a_workload(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)
    payments = report(conn, settings, namespace="payments", limit="all")
    assert {c["namespace"] for c in payments["containers"]} == {"payments"}
    assert payments["containers_total"] == 3 and list(payments["namespaces"]) == ["payments"]
    by_name = report(conn, settings, workload="db-1")
    assert [(c["namespace"], c["workload_name"]) for c in by_name["containers"]] == [("payments", "db-1")]
    by_kind = report(conn, settings, workload="Deployment/api-0")
    assert {c["container"] for c in by_kind["containers"]} == {"app", "proxy"}
    assert report(conn, settings, workload="StatefulSet/api-0")["containers"] == []
    assert report(conn, settings, namespace="nowhere")["containers_total"] == 0


def test_sort_and_limit_choose_the_listed_containers(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)
    everything = report(conn, settings, limit="all")
    idle = [c["cpu_idle_millicores"] for c in everything["containers"]]
    assert idle == sorted(idle, reverse=True)
    top = report(conn, settings, limit="2")
    assert top["containers_total"] == 9 and len(top["containers"]) == 2
    assert top["containers"] == everything["containers"][:2]
    assert set(top["workloads"]) == {f"{c['namespace']}/{c['workload_kind']}/{c['workload_name']}"
                                     for c in top["containers"]}
    names = [(c["namespace"], c["workload_name"], c["container"])
             for c in report(conn, settings, sort="name", limit="all")["containers"]]
    assert names == sorted(names)


def test_every_assessed_container_has_every_field_of_its_class(db: tuple[sqlite3.Connection, Settings]) -> None:
    # ExplainedContainer.of skips the generated __init__: a field added to the class must still be there
    conn, settings = db
    random_history(History(conn), NOW, hours=3)
    built = build_report(conn, parse_report_query({"limit": "all"}, settings, NOW), settings, NOW)
    names = {f.name for f in fields(ExplainedContainer)}
    assert built.containers_total == 9
    for c in built.containers:
        assert names <= set(vars(c)), names - set(vars(c))
        assert c.reasons and isinstance(c.change_impacts, list)  # the listed ones are explained
    totals_only = build_report(conn, replace(parse_report_query({}, settings, NOW), limit=0), settings, NOW)
    assert totals_only.containers == [] and totals_only.cluster == built.cluster


@pytest.mark.parametrize(("params", "message"), [
    ({"window": "7x"}, "window: '7x' is not a duration like 24h, 7d or 2w"),
    ({"window": "0h"}, "window: '0h' is empty; ask for at least 1m"),
    ({"window": "120d"}, "window: '120d' is longer than the stored history of 90 days"),
    ({"sort": "size"}, "sort: 'size' is not one of idle_cpu, idle_memory, cpu_usage"),
    ({"limit": "0"}, "limit: '0' is not a number from 1 to 100000 (or 'all')"),
    ({"limit": "ten"}, "limit: 'ten' is not a number"),
    ({"namespace": "two words"}, "namespace: 'two words' is not a Kubernetes name"),
    ({"namspace": "shop"}, "namspace: unknown parameter; use namespace, workload, window, sort, limit"),
])
def test_bad_parameters_are_refused_naming_the_parameter(params: dict[str, str], message: str,
                                                         tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "db")
    with pytest.raises(InvalidInput) as refused:
        parse_report_query(params, settings, NOW)
    assert str(refused.value).startswith(message)


def test_windows_of_a_day_or_more_start_at_a_utc_midnight() -> None:
    week = parse_window("7d", NOW, 90)
    assert (week.start, week.end, week.whole_days) == (NOW - 13 * 3600 - 7 * 86_400, NOW + 1, True)
    assert parse_window("2w", NOW, 90).start == week.start - 7 * 86_400
    hours = parse_window("6h", NOW, 90)
    assert (hours.start, hours.whole_days) == (NOW + 1 - 6 * 3600, False)


def test_the_default_window_is_report_window_days(tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "db", report_window_days=3)
    assert parse_report_query({}, settings, NOW).window.label == "3d"


def test_csv_has_one_row_per_container_with_the_recommendation_reasons(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)
    query = parse_report_query({"limit": "all", "sort": "name"}, settings, NOW)
    built = build_report(conn, query, settings, NOW)
    rows = list(csv.DictReader(io.StringIO(report_csv(built))))
    assert len(rows) == 9
    first = rows[0]
    assert (first["namespace"], first["workload_name"], first["container"]) == ("batch", "api-2", "app")
    assert first["cpu_recommendation_reason"].startswith("p95 of ")
    assert int(first["recommended_cpu_request_millicores"]) == built.containers[0].recommendation.cpu_request_millicores
    assert {row["oom_killed"] for row in rows} == {"true", "false"}
    assert "oom_killed" in {flag for row in rows for flag in row["flags"].split(";")}


def test_the_cli_table_fits_80_columns_and_json_matches(db: tuple[sqlite3.Connection, Settings],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    conn, settings = db
    history = History(conn)
    random_history(history, NOW, hours=3)
    long_names = history.container("a-namespace-with-a-long-name", "Deployment", "a-workload-with-a-long-name", "c")
    for step in range(12):
        history.add(long_names, NOW - step * 300, Sample())
    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    monkeypatch.setenv("CLUSTER_NAME", "prod-eu-1")
    monkeypatch.setattr("time.time", lambda: NOW)
    assert cli_main(["report", "--window", "1d", "--sort", "name"]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[:2] == ["Cluster prod-eu-1", "Report over 1d: 2026-01-10 00:00 to 2026-01-11 13:00 UTC (3h of data)"]
    assert "10 of 10 containers, namespace, workload, container" in table
    assert any(line.startswith("batch/api-2/app ") for line in lines)
    assert any(line.startswith("a-namesp~/a-worklo~/c   500m") for line in lines)

    assert cli_main(["report", "--format", "json", "--namespace", "shop", "--window", "1d"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["containers_total"] == 3 and body["window"]["label"] == "1d"

    assert cli_main(["report", "--window", "1y"]) == 2
    assert capsys.readouterr().err == "k8s-monitor report: --window: '1y' is not a duration like 24h, 7d or 2w\n"


def get(path: str = "/", accept: str = "*/*", **params: str):  # type: ignore[no-untyped-def]
    from flask import Request
    from werkzeug.test import EnvironBuilder

    return Request(EnvironBuilder(path=path, query_string=params, headers={"Accept": accept}).get_environ())


def test_browsers_get_the_page_and_other_clients_json_unless_format_says(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    answers = {
        "curl": report_answer(get(), settings, clock=lambda: NOW),
        "browser": report_answer(get(accept=browser), settings, clock=lambda: NOW),
        "browser asking for csv": report_answer(get(accept=browser, format="csv"), settings, clock=lambda: NOW),
        "script asking for html": report_answer(get("/report", format="html"), settings, clock=lambda: NOW),
    }
    types = {name: headers["Content-Type"] for name, (_, status, headers) in answers.items() if status == 200}
    assert types == {"curl": "application/json", "browser": "text/html; charset=utf-8",
                     "browser asking for csv": "text/csv; charset=utf-8",
                     "script asking for html": "text/html; charset=utf-8"}
    assert json.loads(answers["curl"][0])["containers_total"] == 9


def test_before_the_first_collection_the_report_says_so_with_a_503(tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "missing" / "k8s_metrics.db")
    body, status, _ = report_answer(get(), settings, clock=lambda: NOW)
    assert status == 503
    assert json.loads(body)["error"].startswith(f"database {settings.database_path} does not exist yet")


def test_without_a_successful_collection_the_report_says_it_has_no_data(
        db: tuple[sqlite3.Connection, Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    conn, settings = db
    conn.execute("INSERT INTO runs (trigger, started_at, finished_at, status, error)"
                 " VALUES ('cli', ?, ?, 'failed', 'pods is forbidden')", (NOW - 600, NOW - 599))
    body = report(conn, settings)
    assert (body["window"]["span_seconds"], body["containers"]) == (0, [])

    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    monkeypatch.setattr("time.time", lambda: NOW)
    assert cli_main(["report"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[1] == "Report over 7d: 2026-01-04 00:00 to 2026-01-11 13:00 UTC (no data)"
    assert " ".join(table.split()).count(NO_DATA) == 1
    assert max(len(line) for line in table.splitlines()) <= 80


def test_the_demo_summary_shows_the_numbers_of_the_report(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    random_history(history, NOW, hours=3)
    hungry = history.container("shop", "Deployment", "hungry", "app")  # uses more than it requests
    for step in range(36):
        history.add(hungry, NOW - step * 300, Sample(cpu_usage_avg_millicores=800, cpu_request_millicores=500,
                                                    memory_working_set_max_bytes=300 * MiB))

    summary = summarize(conn, top=3, settings=settings, now=NOW)

    built = build_report(conn, parse_report_query({"limit": "all"}, settings, NOW), settings, NOW)
    t = built.cluster
    assert (summary.cpu_requested_millicores, summary.cpu_used_millicores, summary.memory_requested_bytes,
            summary.memory_used_bytes) == (t.cpu_requested_millicores, t.cpu_used_millicores,
                                           t.memory_requested_bytes, t.memory_used_bytes)
    assert summary.namespaces == 3 and summary.runs == 36
    # Running in the newest run: 3 namespaces x 7 pod containers less the two of pod-2 (Pending or Succeeded
    # in random_history's newest run), and hungry (History gives every container pods of its own)
    assert (summary.pods, summary.containers) == (3 * (7 - 2) + 1, 3 * (7 - 2) + 1)
    listed = [(c.namespace, f"{c.workload_kind}/{c.workload_name}", c.container) for c in built.containers]
    assert [(f.namespace, f.workload, f.container) for f in summary.over_provisioned] == listed[:3]
    first = built.containers[0]
    assert (summary.over_provisioned[0].cpu_request_millicores, summary.over_provisioned[0].cpu_used_millicores) == \
        (first.cpu_request_millicores, first.cpu_usage_avg_millicores)
    worst = summary.under_provisioned[0]
    assert (worst.workload, worst.cpu_used_millicores, worst.cpu_request_millicores, worst.memory_used_bytes) == \
        ("Deployment/hungry", 800, 500, 300 * MiB)


def test_the_demo_summary_needs_a_successful_run(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    assert summarize(conn, settings=settings, now=NOW) is None


def test_the_report_names_the_cluster_and_shows_what_its_runs_warned_and_cost(
        db: tuple[sqlite3.Connection, Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    conn, _ = db
    settings = load_settings(database_path=conn.execute("PRAGMA database_list").fetchone()[2],
                             collect_interval_seconds=300, cluster_name="prod-eu-1")
    random_history(History(conn), NOW, hours=1)
    duplicate = ('12 containers have duplicated series that differ in job; set PROMETHEUS_SELECTOR '
                 '(e.g. job="kubelet") to keep one')
    conn.execute("UPDATE runs SET prometheus_queries = 7, prometheus_series_returned = 100,"
                 " prometheus_response_bytes = 2000, prometheus_samples_processed = 5000")
    conn.execute("UPDATE runs SET warnings = ? WHERE id IN (SELECT id FROM runs ORDER BY id LIMIT 2)", (duplicate,))
    runs = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'ok'").fetchone()[0]

    body = report(conn, settings, window="1d")
    assert body["cluster_name"] == "prod-eu-1"
    assert body["runs"] == {"runs": runs, "warnings": [duplicate], "prometheus_queries": 7 * runs,
                            "prometheus_series_returned": 100 * runs, "prometheus_response_bytes": 2000 * runs,
                            "prometheus_samples_processed": 5000 * runs}

    page, status, _ = report_answer(get(format="html"), settings, clock=lambda: NOW)
    assert status == 200
    assert "<title>prod-eu-1: Requests vs usage over 7d" in page and "<h1>prod-eu-1: " in page
    assert "Data quality:" in page and "set PROMETHEUS_SELECTOR (e.g. job=&#34;kubelet&#34;)" in page

    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    monkeypatch.setenv("CLUSTER_NAME", "prod-eu-1")
    monkeypatch.setattr("time.time", lambda: NOW)
    assert cli_main(["report", "--window", "1d"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "Cluster prod-eu-1"
    assert f"Warning: {duplicate}" in table
