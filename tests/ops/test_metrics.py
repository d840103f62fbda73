"""/metrics as Prometheus scrapes it: every figure checked against the database it comes from."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared.core.settings import Settings
from shared.domain.alerts.model import Alert
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.notify.delivery import Attempt
from shared.notify.dispatch import prune_notifications, record_attempt
from shared.notify.message import AlertGroup
from shared.simulator.cluster import SimulatedCluster
from shared.store.connection import connect, transaction
from shared.store.retention import apply_retention
from tests.conftest import FakeClock, make_settings
from tests.support.functions import get, health_env, post
from tests.support.servers import free_port, function_server

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


def record_notifications_and_backups(database: Path, now: float) -> None:
    """Notification attempts recorded by the notify feature's own writer; backup rows as the backup writes them."""
    group = AlertGroup("critical", (Alert("X", "critical", {"alertname": "X", "severity": "critical"}, "x", "", now),))
    conn = connect(database)
    for channel, status, count in (("slack", "sent", 3), ("slack", "failed", 1), ("email", "sent", 2)):
        for attempt in range(count):
            record_attempt(conn, now + attempt, channel, group, attempt + 1, Attempt(status), None)
    with transaction(conn):
        conn.executemany(
            "INSERT INTO backups (started_at, finished_at, status, file) VALUES (?, ?, ?, ?)",
            [(now - 7200, now - 7100, "ok", "a.db.gz"), (now - 3600, now - 3500, "ok", "b.db.gz"),
             (now - 60, now - 50, "failed", None)])
    conn.close()


def expected_from_database(database: Path) -> dict[str, float]:
    conn = sqlite3.connect(database)
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
    record_notifications_and_backups(settings.database_path, clock())
    expected = expected_from_database(settings.database_path)

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
    assert value("database_size_bytes") >= settings.database_path.stat().st_size
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
    record_notifications_and_backups(settings.database_path, clock())
    with function_server("health", health_env(settings)) as url:
        before = _counters(url, "notifications_sent")
        conn = connect(settings.database_path)
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
        conn = connect(settings.database_path)
        runs_left = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        conn.close()
        after = _counters(url, "collection_errors")
    assert runs_left == 0
    assert before == after == {(("status", "failed"),): 1, (("status", "partial"),): 1}


def test_metrics_without_any_run_leave_unknown_figures_absent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    connect(settings.database_path).close()  # an empty, current database
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
