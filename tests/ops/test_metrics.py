"""/metrics as Prometheus scrapes it: every figure checked against the database it comes from."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.core.settings import Settings
from shared.core.timeutil import day_floor
from shared.domain.alerts.model import Alert
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.notify.delivery import Attempt
from shared.notify.dispatch import prune_notifications, record_attempt
from shared.notify.message import AlertGroup
from shared.simulator.cluster import SimulatedCluster
from shared.store.connection import open_store, transaction
from shared.store.retention import apply_retention
from tests.conftest import BACKENDS, FakeClock, make_settings
from tests.support.functions import get, health_env, post
from tests.support.report_history import History, random_history, reference_report
from tests.support.servers import free_port, function_server

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

SPEC_METRICS = {
    "http_requests", "http_request_duration_seconds", "pods_collected_total", "collection_duration_seconds",
    "collection_errors", "kubernetes_request_duration_seconds", "prometheus_request_duration_seconds",
    "database_size_bytes", "last_successful_collection_timestamp_seconds", "notifications_sent",
    "backup_last_success_timestamp_seconds",
}


def scrape(url: str, cluster: str | None = None) -> dict[str, tuple[str, dict[tuple, float]]]:
    """family name -> (type, {(sample name, sorted labels but `cluster`): value}); every sample must carry
    the same `cluster` label (CLUSTER_NAME; `cluster` when given)."""
    response = get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.text))
    clusters = {s.labels.get("cluster") for family in families for s in family.samples}
    assert len(clusters) == 1 and None not in clusters and (cluster is None or clusters == {cluster})
    def key(sample) -> tuple:  # type: ignore[no-untyped-def]
        return sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "cluster"))

    return {family.name: (family.type, {key(s): s.value for s in family.samples}) for family in families}


def collect_history(settings: Settings, clock: FakeClock, cluster: SimulatedCluster, tmp_path: Path) -> None:
    """ok, partial (Prometheus down), ok, failed (pods forbidden): the last run is not the last success."""
    interval = settings.collect_interval_seconds
    prometheus_down = make_settings(tmp_path, cluster, prometheus_url=f"http://127.0.0.1:{free_port()}")
    scenario = cluster.scenario
    for step in ("ok", "partial", "ok", "failed"):
        if step == "failed":
            cluster.set_scenario(dataclasses.replace(scenario, denied=frozenset({"pods"})))
        body, _ = collect_once(prometheus_down if step == "partial" else settings, Trigger("cli"), clock=clock)
        assert body["status"] == step, body
        clock.advance(interval)
    cluster.set_scenario(scenario)


def record_notifications_and_backups(settings: Settings, now: float) -> None:
    """Notification attempts recorded by the notify feature's own writer; backup rows as the backup writes them."""
    group = AlertGroup("critical", (Alert("X", "critical", {"alertname": "X", "severity": "critical"}, "x", "", now),))
    conn = open_store(settings)
    for channel, status, count in (("slack", "sent", 3), ("slack", "failed", 1), ("email", "sent", 2)):
        for attempt in range(count):
            record_attempt(conn, now + attempt, channel, group, attempt + 1, Attempt(status), None)
    with transaction(conn):
        conn.executemany(
            "INSERT INTO backups (started_at, finished_at, status, file) VALUES (?, ?, ?, ?)",
            [(now - 7200, now - 7100, "ok", "a.db.gz"), (now - 3600, now - 3500, "ok", "b.db.gz"),
             (now - 60, now - 50, "failed", None)])
    conn.close()


def expected_from_database(settings: Settings) -> dict[str, float]:
    conn = open_store(settings, readonly=True)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "pods": one("SELECT pods FROM runs WHERE status IN ('ok', 'partial') ORDER BY started_at DESC LIMIT 1"),
            "last_success": one("SELECT max(finished_at) FROM runs WHERE status IN ('ok', 'partial')"),
            "duration": one("SELECT finished_at - started_at FROM runs WHERE status != 'skipped'"
                            " ORDER BY started_at DESC LIMIT 1"),
            "kubernetes": one("SELECT kubernetes_seconds FROM runs ORDER BY started_at DESC LIMIT 1"),
            "failed": one("SELECT count(*) FROM runs WHERE status = 'failed'"),
            "partial": one("SELECT count(*) FROM runs WHERE status = 'partial'"),
            "backup": one("SELECT max(finished_at) FROM backups WHERE status = 'ok'"),
            **{column: one(f"SELECT sum({column}) FROM runs") for column in (
                "prometheus_queries", "prometheus_series_returned", "prometheus_response_bytes",
                "prometheus_samples_processed")},
        }
    finally:
        conn.close()


def test_metrics_report_what_the_database_holds_and_the_requests_served(
        settings: Settings, clock: FakeClock, cluster: SimulatedCluster, tmp_path: Path) -> None:
    collect_history(settings, clock, cluster, tmp_path)
    record_notifications_and_backups(settings, clock())
    expected = expected_from_database(settings)

    with function_server("health", health_env(settings)) as url:
        for _ in range(3):
            get(f"{url}/health/liveness")
        for path in ("/wp-admin/setup.php", "/.env"):
            get(f"{url}{path}")
        first = scrape(url, cluster="simulated")  # the kubeconfig context's cluster: CLUSTER_NAME's default
        second = scrape(url)

    assert set(first) >= SPEC_METRICS
    value = lambda name, **labels: first[name][1][  # noqa: E731
        (name if first[name][0] == "gauge" else f"{name}_total", tuple(sorted(labels.items())))]
    assert value("pods_collected_total") == expected["pods"] > 0
    assert value("last_successful_collection_timestamp_seconds") == expected["last_success"]
    assert value("collection_duration_seconds") == expected["duration"]
    assert value("kubernetes_request_duration_seconds") == expected["kubernetes"]
    assert value("collection_errors", status="failed") == expected["failed"] == 1
    assert value("collection_errors", status="partial") == expected["partial"] == 1
    assert value("notifications_sent", channel="slack", status="sent") == 3
    assert value("notifications_sent", channel="slack", status="failed") == 1
    assert value("notifications_sent", channel="email", status="sent") == 2
    assert value("backup_last_success_timestamp_seconds") == expected["backup"]
    assert value("database_size_bytes") >= (settings.database_path.stat().st_size if settings.database_url is None
                                            else 100_000)
    assert value("database_readable") == 1
    for counter, column in (("prometheus_queries", "prometheus_queries"),
                            ("prometheus_series_returned", "prometheus_series_returned"),
                            ("prometheus_response_bytes", "prometheus_response_bytes"),
                            ("prometheus_samples_processed", "prometheus_samples_processed")):
        assert value(counter) == expected[column] > 0, counter
    assert {name: first[name][0] for name in ("pods_collected_total", "collection_errors", "notifications_sent",
                                              "http_requests", "http_request_duration_seconds")} == {
        "pods_collected_total": "gauge", "collection_errors": "counter", "notifications_sent": "counter",
        "http_requests": "counter", "http_request_duration_seconds": "histogram"}

    assert value("http_requests", method="GET", endpoint="/health/liveness", status="200") == 3
    # the two scans, and the start-up probe of tests/servers.py (GET /, not a route either)
    assert value("http_requests", method="GET", endpoint="other", status="404") == 3
    endpoints = {dict(labels)["endpoint"] for _, labels in first["http_requests"][1]}
    assert endpoints == {"/health/liveness", "other"}  # scanned paths never become labels
    # the first scrape is counted by the time of the second
    assert second["http_requests"][1][("http_requests_total", (
        ("endpoint", "/metrics"), ("method", "GET"), ("status", "200")))] == 1
    assert second["http_request_duration_seconds"][1][(
        "http_request_duration_seconds_count", (("endpoint", "/health/liveness"), ("method", "GET")))] == 3


def _counters(url: str, name: str) -> dict[tuple, float]:
    return {labels: value for (_, labels), value in scrape(url)[name][1].items()}


def test_notifications_sent_never_goes_down_when_old_attempts_are_pruned(tmp_path: Path, clock: FakeClock) -> None:
    """A counter that drops is a reset to Prometheus: increase() would add the whole count again."""
    settings = make_settings(tmp_path)
    record_notifications_and_backups(settings, clock())
    with function_server("health", health_env(settings)) as url:
        before = _counters(url, "notifications_sent")
        conn = open_store(settings)
        prune_notifications(conn, clock() + 3600)  # what send_groups does RETENTION_HOURLY_DAYS later
        left = conn.execute("SELECT COUNT(*) FROM notifications").fetchone()[0]
        conn.close()
        after = _counters(url, "notifications_sent")
    assert left == 0
    assert before == after == {(("channel", "email"), ("status", "sent")): 2,
                               (("channel", "slack"), ("status", "failed")): 1,
                               (("channel", "slack"), ("status", "sent")): 3}


def test_collection_errors_never_go_down_when_retention_deletes_old_runs(
        settings: Settings, clock: FakeClock, cluster: SimulatedCluster, tmp_path: Path) -> None:
    collect_history(settings, clock, cluster, tmp_path)
    with function_server("health", health_env(settings)) as url:
        before = _counters(url, "collection_errors")
        clock.advance((settings.retention_hourly_days + 1) * 86_400)
        apply_retention(settings, clock)
        conn = open_store(settings)
        runs_left = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        conn.close()
        after = _counters(url, "collection_errors")
    assert runs_left == 0
    assert before == after == {(("status", "failed"),): 1, (("status", "partial"),): 1}


def test_metrics_without_any_run_leave_unknown_figures_absent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    open_store(settings).close()  # an empty, current database
    with function_server("health", health_env(settings)) as url:
        families = scrape(url)

    samples = lambda name: families[name][1]  # noqa: E731
    assert samples("pods_collected_total") == {}
    assert samples("collection_duration_seconds") == {}
    assert samples("last_successful_collection_timestamp_seconds") == {
        ("last_successful_collection_timestamp_seconds", ()): 0}
    assert samples("backup_last_success_timestamp_seconds") == {("backup_last_success_timestamp_seconds", ()): 0}
    assert samples("collection_errors") == {("collection_errors_total", (("status", "failed"),)): 0,
                                            ("collection_errors_total", (("status", "partial"),)): 0}


def test_every_function_counts_its_requests_and_serves_them_on_metrics(
        settings: Settings, clock: FakeClock) -> None:
    clock.now = time.time()  # the collect function runs on real time: put the simulator there too
    with function_server("collect", health_env(settings)) as url:
        collected = post(url, json={})
        refused = get(url)
        families = scrape(url)

    assert collected.status_code == 200, collected.text
    assert refused.status_code == 405
    requests_total = families["http_requests"][1]
    assert requests_total[("http_requests_total", (("endpoint", "/"), ("method", "POST"), ("status", "200")))] == 1
    # ours, and the start-up probe of tests/servers.py
    assert requests_total[("http_requests_total", (("endpoint", "/"), ("method", "GET"), ("status", "405")))] == 2
    assert "pods_collected_total" not in families  # database figures come from the health function only


def report_history(tmp_path: Path) -> Settings:
    """Three hours of the report tests' history up to now (the health function reads the real clock)."""
    settings = make_settings(tmp_path)
    conn = open_store(settings)
    random_history(History(conn), int(time.time()) // 300 * 300, hours=3)
    conn.close()
    return settings


def default_report(settings: Settings, **params: str) -> dict:
    """The report function's JSON of the default report: what the gauges must equal."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    from shared.entry.report import report_answer

    request = Request(EnvironBuilder(path="/", query_string={"limit": "all", **params}).get_environ())
    body, status, _ = report_answer(request, settings)
    assert status == 200
    return json.loads(body)


def test_resource_gauges_are_the_default_reports_figures_per_namespace(tmp_path: Path) -> None:
    settings = report_history(tmp_path)
    with function_server("health", health_env(settings)) as url:
        families = scrape(url)
    expected = default_report(settings)

    def gauge(name: str, **labels: str) -> float:
        return families[name][1][(name, tuple(sorted(labels.items())))]

    assert set(expected["namespaces"]) == {"shop", "payments", "batch"}
    for namespace, totals in expected["namespaces"].items():
        assert gauge("report_containers", namespace=namespace) == totals["containers"] == 3
        for figure in ("requested", "used", "idle"):
            assert gauge(f"report_cpu_{figure}_cores", namespace=namespace) == \
                pytest.approx(totals[f"cpu_{figure}_millicores"] / 1000, abs=1e-4)
            assert gauge(f"report_memory_{figure}_bytes", namespace=namespace) == \
                pytest.approx(totals[f"memory_{figure}_bytes"], abs=1)
        for flag in ("oom_killed", "cpu_throttled", "memory_near_limit", "no_requests", "no_limits"):
            flagged = sum(1 for c in expected["containers"]
                          if c["namespace"] == namespace and flag in {f["flag"] for f in c["flags"]})
            assert gauge("report_risk_flags", namespace=namespace, flag=flag) == flagged
        for figure in ("idle_cost", "savings", "cost_to_fix_risk"):
            money = totals["costs"][f"{'idle' if figure == 'idle_cost' else figure}_per_month"]
            assert gauge(f"report_{figure}_per_month", namespace=namespace, currency="USD") == \
                pytest.approx(money, abs=0.005)
    cluster = expected["cluster"]["costs"]
    assert cluster["idle_per_month"] > 0 and cluster["cost_to_fix_risk_per_month"] > 0  # usage above requests
    for figure in ("idle_cost", "savings", "cost_to_fix_risk"):
        assert gauge(f"report_cluster_{figure}_per_month", currency="USD") == pytest.approx(
            cluster[f"{'idle' if figure == 'idle_cost' else figure}_per_month"], abs=0.005)
    assert gauge("report_window_covered_seconds") == expected["window"]["span_seconds"] > 0
    assert sum(gauge("report_risk_flags", namespace=ns, flag="oom_killed") for ns in expected["namespaces"]) == 1
    # bounded: per namespace 7 figures, 6 flags (hpa_at_max too) and 3 of money, and 3 of money for the
    # cluster, whatever the number of containers
    report_series = sum(len(samples) for name, (_, samples) in families.items() if name.startswith("report_"))
    assert report_series == 1 + 3 * (7 + 6 + 3) + 3
    assert not any(name.startswith("report_workload_") for name in families)  # METRICS_WORKLOAD_GAUGES is off


def test_workload_gauges_are_capped_with_the_largest_containers_first(tmp_path: Path) -> None:
    settings = report_history(tmp_path)
    env = health_env(settings, METRICS_WORKLOAD_GAUGES="true", METRICS_WORKLOAD_GAUGES_MAX="10")
    with function_server("health", env) as url:
        families = scrape(url)
        now = time.time()
    report = default_report(settings)
    conn = open_store(settings)
    reference = reference_report(conn, day_floor(now - settings.report_window_days * 86_400), int(now) + 1)
    conn.close()
    cpu_total = sum(c["cpu_requested_avg_millicores"] for c in reference.values())
    memory_total = sum(c["memory_requested_avg_bytes"] for c in reference.values())
    largest_first = sorted(reference, key=lambda key: -(reference[key]["cpu_requested_avg_millicores"] / cpu_total
                                                        + reference[key]["memory_requested_avg_bytes"] / memory_total))
    listed = {(c["namespace"], c["workload_name"], c["container"]): c for c in report["containers"]}

    names = {"report_workload_cpu_request_cores": ("cpu_request_millicores", 1000),
             "report_workload_cpu_recommended_cores": ("recommended_cpu_request_millicores", 1000),
             "report_workload_memory_request_bytes": ("memory_request_bytes", 1),
             "report_workload_memory_recommended_bytes": ("recommended_memory_request_bytes", 1)}
    shown: dict[tuple[str, str, str], int] = {}
    for name, (key, scale) in names.items():
        for (_, labels), value in families[name][1].items():
            found = dict(labels)
            container = (found["namespace"], found["workload"].split("/")[1], found["container"])
            assert value == listed[container][key] / scale
            shown[container] = shown.get(container, 0) + 1
    wanted = [sum(1 for key, _ in names.values() if listed[c][key] is not None) for c in largest_first]
    fitting = next(n for n in range(len(wanted) + 1) if n == len(wanted) or sum(wanted[:n + 1]) > 10)
    assert list(shown) == largest_first[:fitting] and sum(shown.values()) == sum(wanted[:fitting]) <= 10
    assert families["report_workload_series_dropped"][1][("report_workload_series_dropped", ())] == \
        sum(wanted[fitting:]) > 0


def as_openmetrics(exposition: str, instances: tuple[str, ...], times: range) -> str:
    """The report_* samples of a scrape as Prometheus would have stored them: job and instance
    labels added, one sample per scrape time, for each of `instances` (health instances serving the
    same database)."""
    lines = []
    for family in text_string_to_metric_families(exposition):
        if not family.name.startswith("report_"):
            continue
        lines.append(f"# TYPE {family.name} gauge")
        for sample in family.samples:
            for instance in instances:
                labels = {**sample.labels, "job": "k8s-resource-monitor", "instance": instance}
                text = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
                lines += [f"{sample.name}{{{text}}} {sample.value} {ts}" for ts in times]
    return "\n".join([*lines, "# EOF", ""])


@pytest.mark.sqlite_only("the dashboard's queries over a scrape, whatever the store")
def test_the_resource_dashboard_shows_the_reports_figures_once_in_a_real_prometheus(tmp_path: Path) -> None:
    """Every query of grafana-resources.json answers from the scraped figures (two health instances
    scraped, as when Knative runs two), and the cluster's totals equal the report's, not twice them."""
    import requests

    from tests.support.servers import REPO, real_prometheus

    settings = report_history(tmp_path)
    env = health_env(settings, METRICS_WORKLOAD_GAUGES="true", CLUSTER_NAME="prod-eu-1")
    with function_server("health", env) as url:
        exposition = get(f"{url}/metrics").text
    expected = default_report(settings)
    scraped = int(time.time()) // 60 * 60 - 3600
    (tmp_path / "scrapes.om").write_text(as_openmetrics(exposition, ("10.0.0.1:8012", "10.0.0.2:8012"),
                                                        range(scraped - 600, scraped + 1, 60)))
    dashboard = json.loads((REPO / "common/base/grafana-resources.json").read_text(encoding="utf-8"))

    with real_prometheus(tmp_path / "scrapes.om") as prometheus:
        def ask(expr: str) -> list[dict]:
            answer = requests.get(f"{prometheus}/api/v1/query", timeout=10, params={
                "query": expr.replace("$cluster", "prod-eu-1").replace("$namespace", ".*"), "time": scraped})
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]["result"]

        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert ask(target["expr"]), f"panel {panel['title']!r} shows nothing: {target['expr']}"
        totals = {panel["title"]: float(ask(panel["targets"][0]["expr"])[0]["value"][1])
                  for panel in dashboard["panels"] if panel["type"] == "stat"}
        variables = {v["name"]: v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"}
        listed = requests.get(f"{prometheus}/api/v1/label/cluster/values", timeout=10).json()["data"]

    cluster = expected["cluster"]
    assert totals["CPU requested"] == pytest.approx(cluster["cpu_requested_millicores"] / 1000, abs=1e-3)
    assert totals["CPU idle"] == pytest.approx(cluster["cpu_idle_millicores"] / 1000, abs=1e-3)
    assert totals["Memory used"] == pytest.approx(cluster["memory_used_bytes"], abs=4)
    assert totals["Idle cost a month"] == pytest.approx(cluster["costs"]["idle_per_month"], abs=0.02)
    assert totals["Savings a month"] == pytest.approx(cluster["costs"]["savings_per_month"], abs=0.02)
    assert totals["Cost of fixing risks a month"] == pytest.approx(cluster["costs"]["cost_to_fix_risk_per_month"],
                                                                   abs=0.02)
    assert totals["Idle cost a month"] > 0 and totals["Cost of fixing risks a month"] > 0
    assert totals["Workload series left out"] == 0
    assert listed == ["prod-eu-1"] and "report_containers" in variables["cluster"]
