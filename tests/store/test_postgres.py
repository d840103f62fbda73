"""PostgreSQL as the store: its schema against SQLite's, faults of the server, and many clusters at once."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs

import functions_framework
import psycopg
import pytest
from pydantic import SecretStr

from shared.core.formats import utc_minute
from shared.core.settings import Settings
from shared.domain.report.fleet import build_fleet
from shared.domain.report.query import parse_report_query
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.entry.http import use_settings
from shared.ops.health import check_health, check_readiness
from shared.simulator.cluster import SimulatedCluster
from shared.store import postgres
from shared.store import runs as store_runs
from shared.store.connection import SchemaTooNew, ServerUnavailable, connect, open_store
from shared.store.postgres import SCHEMA_VERSION, cluster_schemas, schema_name
from shared.store.postgres_sql import to_postgres
from shared.store.retention import apply_retention
from tests.conftest import FakeClock, make_settings
from tests.support.postgres import PostgresServer
from tests.support.servers import REPO
from tests.support.store_rows import store_rows, store_value

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

PASSWORD = "pg-s3cret-never-shown"


def columns_sqlite(path: Path) -> dict[str, list[str]]:
    conn = connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        return {table: sorted(row[1] for row in conn.execute(f"PRAGMA table_info({table})")) for table in tables}
    finally:
        conn.close()


def test_both_backends_migrate_to_the_same_tables_and_columns(settings: Settings, tmp_path: Path) -> None:
    open_store(settings).close()
    rows = store_rows(settings, "SELECT table_name, column_name FROM information_schema.columns"
                                " WHERE table_schema = current_schema() AND table_name <> 'schema_version'"
                                " AND table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition)")
    postgres: dict[str, list[str]] = {}
    for table, column in rows:
        if (table, column) != ("samples", "day"):  # PostgreSQL's partition key
            postgres.setdefault(table, []).append(column)

    assert {table: sorted(names) for table, names in postgres.items()} == columns_sqlite(tmp_path / "parity.db")


def test_a_cluster_schema_of_version_1_upgrades_and_then_keeps_what_recommendations_need(
        settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as old:  # the release before issue 17's tables
        old.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:1])
        old.setattr(postgres, "SCHEMA_VERSION", 1)
        open_store(settings).close()
        assert store_value(settings, "SELECT to_regclass('hpa_listings')") is None

    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200

    assert store_value(settings, "SELECT version FROM schema_version") == SCHEMA_VERSION
    assert store_value(settings, "SELECT COUNT(*) FROM workload_metadata") > 0
    assert store_value(settings, "SELECT COUNT(*) FROM hpa_listings WHERE error IS NULL") == 1


def test_a_schema_newer_than_the_code_is_refused(settings: Settings) -> None:
    open_store(settings).close()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as raw:  # type: ignore[union-attr]
        raw.execute(f"UPDATE {schema_name(settings.cluster_name)}.schema_version SET version = %s",
                    (SCHEMA_VERSION + 1,))

    for readonly in (False, True):
        with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
            open_store(settings, readonly=readonly)
    assert check_readiness(settings).status == "unhealthy"


def test_sqlite_spellings_are_translated_and_literals_kept() -> None:
    assert to_postgres("INSERT OR IGNORE INTO nodes (name) VALUES (?)") == \
        "INSERT INTO nodes (name) VALUES (%s) ON CONFLICT DO NOTHING"
    assert to_postgres("SELECT MAX(a), MIN(COALESCE(b, 0), :c) FROM t WHERE x LIKE '50%?:no'") == \
        "SELECT MAX(a), LEAST(COALESCE(b, 0), %(c)s) FROM t WHERE x LIKE '50%%?:no'"
    assert to_postgres("SELECT CAST(ROUND(x * 2) AS INTEGER), CAST(y AS REAL) FROM a CROSS JOIN b ON b.id = a.id") == \
        "SELECT CAST(trunc(ROUND(x * 2)) AS bigint), CAST(y AS double precision) FROM a JOIN b ON b.id = a.id"
    assert to_postgres("SELECT id FROM hpas WHERE namespace IN (SELECT value FROM json_each(?))") == \
        "SELECT id FROM hpas WHERE namespace IN (SELECT jsonb_array_elements_text(CAST(%s AS jsonb)))"


def test_each_cluster_writes_its_own_rows_into_one_database(settings: Settings, clock: FakeClock) -> None:
    other = settings.model_copy(update={"cluster_name": "east/prod 2"})
    for each in (settings, other, settings):
        body, status = collect_once(each, Trigger("cli"), clock=clock)
        assert status == 200, body
        clock.advance(300)

    assert store_value(settings, "SELECT COUNT(*) FROM runs WHERE status = 'ok'") == 2
    assert store_value(other, "SELECT COUNT(*) FROM runs WHERE status = 'ok'") == 1
    assert store_value(other, "SELECT cluster FROM runs") == "east/prod 2"
    conn = open_store(settings, readonly=True)
    try:
        assert [name for name, _ in cluster_schemas(conn.raw)] == sorted(  # type: ignore[attr-defined]
            [settings.cluster_name, "east/prod 2"])
    finally:
        conn.close()


def unreachable(settings: Settings, tmp_path: Path) -> Settings:
    """The same store settings, the server on a port nobody listens on, with a password."""
    return make_settings(tmp_path, None, database_url="postgresql://monitor@127.0.0.1:9/k8s",
                         database_password=PASSWORD, kubeconfig=settings.kubeconfig,
                         prometheus_url=settings.prometheus_url)


def test_an_unreachable_server_fails_the_run_naming_the_server_without_its_password(
        settings: Settings, tmp_path: Path) -> None:
    down = unreachable(settings, tmp_path / "down")
    body, status = collect_once(down, Trigger("cli"))
    assert (status, body["status"]) == (503, "failed")  # worth a retry: PingSource sends the tick again
    assert "PostgreSQL postgresql://monitor@127.0.0.1:9/k8s cannot be reached" in body["error"]
    assert PASSWORD not in str(body)
    with pytest.raises(ServerUnavailable) as raised:  # a delivery with an event id cannot even claim it
        collect_once(down, Trigger("cloudevent", event_source="/ping", event_id="1"))
    assert "postgresql://monitor@127.0.0.1:9/k8s" in str(raised.value) and PASSWORD not in str(raised.value)

    health = check_health(down).as_dict()
    assert (health["status"], health["database_status"]) == ("unhealthy", "unhealthy")
    assert "postgresql://monitor@127.0.0.1:9/k8s" in health["checks"]["database"]["error"]
    assert PASSWORD not in str(health)


def test_a_restarted_server_fails_one_run_and_health_recovers_by_itself(
        settings: Settings, clock: FakeClock, postgres_server_for_tests: PostgresServer) -> None:
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200
    postgres_server_for_tests.stop()
    try:
        clock.advance(300)
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
        assert (status, body["status"]) == (503, "failed")
        assert f"127.0.0.1:{postgres_server_for_tests.port}" in body["error"]
        assert check_health(settings, now=clock()).status == "unhealthy"
    finally:
        postgres_server_for_tests.start()

    clock.advance(300)
    body, status = collect_once(settings, Trigger("cli"), clock=clock)
    assert status == 200, body
    report = check_health(settings, now=clock())
    assert report.checks["database"].status == "healthy"
    assert store_value(settings, "SELECT COUNT(*) FROM runs WHERE status = 'ok'") == 2


def test_a_server_lost_mid_run_stores_nothing_of_the_run(
        settings: Settings, clock: FakeClock, postgres_server_for_tests: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200
    samples_before = store_value(settings, "SELECT COUNT(*) FROM samples")
    spans = store_runs._span_ids

    def stop_after_the_run_row(*args: object) -> list[int]:
        postgres_server_for_tests.stop("immediate")  # the run row is written, its samples not yet
        return spans(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_runs, "_span_ids", stop_after_the_run_row)
    clock.advance(300)
    try:
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
    finally:
        postgres_server_for_tests.start()
    monkeypatch.undo()

    assert (status, body["status"]) == (503, "failed"), body
    assert f"PostgreSQL postgresql://postgres@127.0.0.1:{postgres_server_for_tests.port}/" in body["error"]
    assert store_value(settings, "SELECT COUNT(*) FROM samples") == samples_before
    assert store_value(settings, "SELECT COUNT(*) FROM runs") == 1  # the lost run's row went with its transaction
    clock.advance(300)
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200


def test_eight_deliveries_of_one_event_per_cluster_collect_once_per_cluster(
        settings: Settings, clock: FakeClock, cluster: SimulatedCluster) -> None:
    clusters = [settings, settings.model_copy(update={"cluster_name": "second"})]  # both new: their schemas too
    answers: list[tuple[str, int, str]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(16)

    def deliver(each: Settings) -> None:
        try:
            start.wait()
            body, status = collect_once(each, Trigger("cloudevent", event_source="/ping", event_id="tick-1"),
                                        clock=clock)
            answers.append((each.cluster_name, status, body["status"]))
        except BaseException as exc:  # noqa: BLE001 — reported below
            failures.append(exc)

    threads = [threading.Thread(target=deliver, args=(each,)) for each in clusters for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not failures
    assert len(answers) == 16
    for each in clusters:
        mine = [(status, state) for name, status, state in answers if name == each.cluster_name]
        assert [answer for answer in mine if answer[1] == "ok"] == [(200, "ok")], mine
        assert {state for _, state in mine} <= {"ok", "running", "duplicate"}
        assert store_value(each, "SELECT COUNT(*) FROM runs WHERE status = 'ok'") == 1
        assert store_value(each, "SELECT COUNT(*) FROM processed_events WHERE event_id = 'tick-1'") == 1


def test_a_database_error_is_a_dbapi_error_naming_the_server(settings: Settings) -> None:
    conn = open_store(settings)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="PostgreSQL postgresql://.*: relation \"nothing\""):
            conn.execute("SELECT * FROM nothing")
    finally:
        conn.close()


def report_app(settings: Settings):  # type: ignore[no-untyped-def]
    app = functions_framework.create_app("report", str(REPO / "functions" / "report" / "main.py"))
    use_settings(app, settings)
    return app.test_client()


def test_the_fleet_lists_every_cluster_stale_first_and_each_cluster_reports_alone(
        settings: Settings, clock: FakeClock) -> None:
    clock.now = time.time() - 3600  # "east" stopped collecting an hour ago: stale
    east = settings.model_copy(update={"cluster_name": "east"})
    assert collect_once(east, Trigger("cli"), clock=clock)[1] == 200
    clock.now = time.time()
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200
    client = report_app(settings)

    fleet = client.get("/fleet?window=24h").json
    assert [(row["cluster"], row["stale"]) for row in fleet["clusters"]] == [("east", True),
                                                                            (settings.cluster_name, False)]
    for row in fleet["clusters"]:
        assert row["containers"] > 0 and row["cpu_requested_millicores"] > 0 and row["error"] is None
        assert row["last_successful_collection"] is not None
    def figures(rows: list[dict]) -> list[dict]:  # 24h is not a stored window: each request computes it
        return [{name: value for name, value in row.items() if name != "totals_computed_at"} for row in rows]

    assert figures(client.get("/?view=fleet&window=24h").json["clusters"]) == figures(fleet["clusters"])

    page = client.get("/fleet?window=24h", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.get_data(as_text=True)
    assert html.index(">east<") < html.index(f">{settings.cluster_name}<") and "<strong>stale</strong>" in html
    assert '<th scope="col">CPU idle</th>' in html and "?cluster=east&amp;window=24h" in html
    savings = [row["costs"]["savings_per_month"] for row in fleet["clusters"]]
    assert fleet["currency"] == "USD" and '<th scope="col">Savings a month</th>' in html
    assert all(f'<td class="num">{amount:,.2f} USD</td>' in html for amount in savings)

    own = client.get("/?window=24h&format=json").json
    theirs = client.get("/?window=24h&format=json&cluster=east").json
    assert own["cluster_name"] == settings.cluster_name and theirs["cluster_name"] == "east"
    unknown = client.get("/?cluster=nowhere")
    assert unknown.status_code == 404 and "east" in unknown.json["error"]


def test_a_reporting_role_that_cannot_read_the_stored_totals_gets_them_computed(
        settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    clock.now = time.time()
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200
    url, schema, role = settings.database_url.get_secret_value(), schema_name(settings.cluster_name), "fleet_viewer"  # type: ignore[union-attr]
    with psycopg.connect(url, autocommit=True) as raw:  # SELECT granted before an upgrade added report_totals
        raw.execute(f"CREATE ROLE {role} LOGIN")
        raw.execute(f"GRANT USAGE ON SCHEMA k8s_monitor, {schema} TO {role}")
        raw.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA k8s_monitor, {schema} TO {role}")
        raw.execute(f"REVOKE SELECT ON {schema}.report_totals FROM {role}")
    try:
        viewer = settings.model_copy(update={"database_url": SecretStr(url.replace("//postgres@", f"//{role}@"))})
        with caplog.at_level(logging.WARNING):
            [row] = build_fleet(viewer, parse_report_query({}, viewer, clock.now), clock.now).clusters
        assert row.error is None and row.totals.containers > 0 and row.totals_computed_at == clock.now
        assert "permission denied for table report_totals" in caplog.text and "SELECT on the table" in caplog.text
    finally:
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute(f"DROP OWNED BY {role}")  # the role is the server's: the next test's database is another
            raw.execute(f"DROP ROLE {role}")


class _Links(HTMLParser):
    """The page's link addresses and its form's hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and (found.get("href") or "").startswith("?"):
            self.hrefs.append(found["href"] or "")
        if tag == "input" and found.get("type") == "hidden":
            self.hidden[found.get("name") or ""] = found.get("value") or ""


def page_links(client, address: str) -> _Links:  # type: ignore[no-untyped-def]
    answer = client.get(address, headers={"Accept": "text/html"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    links = _Links()
    links.feed(answer.get_data(as_text=True))
    return links


def test_the_fleet_links_each_cluster_to_its_page_whose_links_stay_on_that_cluster(
        settings: Settings, clock: FakeClock) -> None:
    clock.now = time.time()
    east = settings.model_copy(update={"cluster_name": "east"})
    for cluster_settings in (east, settings):
        assert collect_once(cluster_settings, Trigger("cli"), clock=clock)[1] == 200
    client = report_app(settings)

    fleet = page_links(client, "/fleet?window=24h").hrefs
    [east_page] = [href for href in fleet if parse_qs(href[1:]).get("cluster") == ["east"]]
    views = {"cluster": f"/{east_page}&limit=2", "namespace": f"/{east_page}&namespace=shop&limit=2"}
    for view, address in views.items():
        links = page_links(client, address)
        assert links.hidden.get("cluster") == "east", f"the {view} view's filter form keeps the cluster"
        assert len(links.hrefs) > 5, links.hrefs  # sorting, paging, views, downloads
        for href in links.hrefs:
            assert parse_qs(href[1:]).get("cluster") == ["east"], f"{view} view: {href}"
        for href in links.hrefs:  # every link answers the east cluster's report: a page, or a download
            answer = client.get(f"/{href}", headers={"Accept": "text/html"})
            assert answer.status_code == 200, href
            if answer.content_type.startswith("text/html"):  # the workload view among them: its links too
                assert "<title>east:" in answer.get_data(as_text=True), href
                followed = _Links()
                followed.feed(answer.get_data(as_text=True))
                assert all(parse_qs(h[1:]).get("cluster") == ["east"] for h in followed.hrefs), followed.hrefs
            elif answer.content_type.startswith("application/json"):
                assert answer.json["cluster_name"] == "east", href


def test_health_judges_the_cluster_asked_for(settings: Settings, clock: FakeClock) -> None:
    clock.now = time.time() - 3600
    east = settings.model_copy(update={"cluster_name": "east"})
    assert collect_once(east, Trigger("cli"), clock=clock)[1] == 200
    clock.now = time.time()
    assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200

    assert check_health(settings).checks["collection"].status == "healthy"
    stale = check_health(settings, cluster="east")
    assert stale.checks["collection"].status == "degraded"
    assert stale.checks["database"].details["cluster"] == "east"


def test_retention_drops_the_partitions_of_whole_old_days(settings: Settings) -> None:
    from tests.store.test_retention import DAY, count, day_start, store_days

    today = day_start(time.time())
    store_days(settings, today - 9 * DAY, days=2, step=3600)  # days 9 and 8 ago: past RETENTION_RAW_DAYS (7)
    store_days(settings, today - DAY, days=1, step=3600)
    partitions = "SELECT COUNT(*) FROM pg_class WHERE relispartition AND relkind = 'r' AND relname LIKE 'samples_d2%'"
    before, samples = count(settings, partitions), count(settings, "SELECT COUNT(*) FROM samples")
    assert before >= 5  # each day's own, and the days ahead of the last one

    result = apply_retention(settings)

    assert count(settings, partitions) == before - 2
    assert result.samples_deleted == samples - count(settings, "SELECT COUNT(*) FROM samples") > 0
    assert count(settings, "SELECT COUNT(*) FROM samples_default") == 0  # the store always names the day
    assert count(settings, "SELECT COUNT(*) FROM hourly_rollups") > 0


def test_the_cli_prints_the_fleet_and_one_clusters_report(
        settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from shared.cli import main

    clock.now = time.time() - 600  # ten minutes ago: not stale, and their stored totals are as of then
    for name in ("east", "west"):
        assert collect_once(settings.model_copy(update={"cluster_name": name}), Trigger("cli"), clock=clock)[1] == 200
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())  # type: ignore[union-attr]
    monkeypatch.setenv("CLUSTER_NAME", "west")

    assert main(["report", "--fleet", "--window", "24h"]) == 0
    table = capsys.readouterr().out
    assert table.index("east ") < table.index("west ") and table.count(" ok ") == 2
    assert main(["report", "--fleet", "--format", "json"]) == 0  # REPORT_WINDOW_DAYS: the stored totals
    fleet = json.loads(capsys.readouterr().out)
    assert main(["report", "--fleet"]) == 0
    money = capsys.readouterr().out.split("SAVINGS/MONTH", 1)[1]
    for row in fleet["clusters"]:
        costs = row["costs"]
        assert row["totals_computed_at"] == clock.now
        idle, savings = (f"{costs[name]:,.2f} USD" for name in ("idle_per_month", "savings_per_month"))
        assert f"{row['cluster']:<22}{idle:>17}{savings:>17}  {utc_minute(clock.now)}" in money
    assert main(["report", "--cluster", "east", "--format", "json", "--window", "24h"]) == 0
    assert json.loads(capsys.readouterr().out)["cluster_name"] == "east"
    assert main(["migrate", "--cluster", "north"]) == 0
    assert "cluster 'north': schema version" in capsys.readouterr().out
