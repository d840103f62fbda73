"""The report page's views, tables and charts, rendered from a stored history and read back from the HTML."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from shared.core.settings import Settings, load_settings
from shared.domain.errors import InvalidInput
from shared.domain.report.charts import CPU, Marker, usage_chart
from shared.entry.report import report_answer
from shared.store.connection import connect
from shared.store.retention import apply_retention
from shared.store.usage_series import Point, data_span, series_step, usage_series
from shared.store.window_usage import parse_window
from tests.support.report_history import SAMPLE_TS, SAMPLES, History, MiB, Sample, random_history

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC, on a collection
INTERVAL = 300


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Settings]]:
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", collect_interval_seconds=INTERVAL,
                             cluster_name="test")
    conn = connect(settings.database_path)
    yield conn, settings
    conn.close()


def page(settings: Settings, **params: str) -> str:
    request = Request(EnvironBuilder(path="/", query_string={**params, "format": "html"}).get_environ())
    body, status, headers = report_answer(request, settings, clock=lambda: NOW)
    assert status == 200, body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    return body


def charts(body: str) -> list[dict]:
    """Every chart of a page: its axis (data-start, data-end), y labels, lines and data."""
    found = []
    for figure in re.findall(r'<figure class="chart.*?</figure>', body, re.S):
        attributes = dict(re.findall(r'data-(start|end|kind|points)="([^"]*)"', figure.split(">", 1)[0]))
        data = re.search(r'<script type="application/json" class="chart-data">(.*?)</script>', figure, re.S)
        found.append({
            **attributes,
            "values": re.findall(r">([^<]+)</text>", re.search(r'<svg class="values".*?</svg>', figure, re.S).group(0)),
            "lines": re.findall(r'<polyline class="line line-(\w+)"[^>]*points="([^"]*)"', figure),
            "data": json.loads(data.group(1)) if data else None,
        })
    return found


def rows(body: str) -> list[list[str]]:
    """The cells' text of the table of rows."""
    table = re.search(r'<table id="rows".*?<tbody>(.*?)</tbody>', body, re.S)
    assert table is not None
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def test_a_chart_spans_the_samples_present_not_the_whole_window(db: tuple[sqlite3.Connection, Settings]) -> None:
    """A week's window over an hour of history: the chart is that hour, one point per collection
    (the page used to draw the week, and the hour as a few dots against its right edge)."""
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    times = [NOW - step * INTERVAL for step in range(12)]
    for ts in times:
        history.add(api, ts, Sample())

    (cpu, memory) = charts(page(settings, window="7d", namespace="shop", workload="api"))

    for chart in (cpu, memory):
        assert (int(chart["start"]), int(chart["end"])) == (min(times), max(times))
        assert chart["data"]["t"] == sorted(times)
        assert int(chart["points"]) == 12


def test_the_value_axis_fits_one_pod_not_the_limit_times_the_pods(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    for step in range(12):
        for pod in ("a", "b", "c"):
            history.add(api, NOW - step * INTERVAL, Sample(cpu_usage_avg_millicores=400, cpu_usage_max_millicores=600,
                                                           cpu_request_millicores=500, cpu_limit_millicores=1000,
                                                           pod=pod))

    cpu, _ = charts(page(settings, window="6h", namespace="shop", workload="api"))

    assert cpu["values"] == ["0m", "250m", "500m", "750m", "1000m", "1250m"]  # the limit, and a step over it
    assert {line for line, _ in cpu["lines"]} == {"avg", "max", "request", "limit", "p95", "recommended"}


def test_each_step_shows_the_average_and_the_lowest_and_highest_pod(db: tuple[sqlite3.Connection, Settings]) -> None:
    """Usage of Running pods only: a Pending pod's sample counts for neither the average nor the spread."""
    conn, _ = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    for pod, cpu, memory in (("a", 100, 100), ("b", 300, 200), ("c", 800, 600)):
        history.add(api, NOW, Sample(cpu_usage_avg_millicores=cpu, cpu_usage_max_millicores=cpu + 50,
                                     memory_working_set_avg_bytes=memory * MiB,
                                     memory_working_set_max_bytes=memory * MiB + 1, pod=pod,
                                     phase="Pending" if pod == "c" else "Running"))
    window = parse_window("1h", NOW, 90)

    (point,) = usage_series(conn, [api], window, INTERVAL)[api]

    assert (point.ts, point.seconds) == (NOW, INTERVAL)
    assert (point.cpu_avg_millicores, point.cpu_low_millicores, point.cpu_high_millicores,
            point.cpu_max_millicores) == (200, 100, 300, 350)
    assert (point.memory_avg_bytes, point.memory_low_bytes, point.memory_high_bytes, point.memory_max_bytes) == (
        150 * MiB, 100 * MiB, 200 * MiB, 200 * MiB + 1)


def test_missed_collections_are_gaps_and_a_late_one_is_not(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    # an hour, 30 minutes without a collection, then an hour; one collection of it 4 minutes late
    times = [NOW - 150 * 60 + step * INTERVAL for step in range(12)] + [NOW - step * INTERVAL for step in range(12)]
    for ts in times:
        history.add(api, ts + (240 if ts == NOW - 20 * 60 else 0), Sample())

    cpu, _ = charts(page(settings, window="6h", namespace="shop", workload="api"))

    average = [points for line, points in cpu["lines"] if line == "avg"]
    assert [len(points.split()) for points in average] == [12, 12]


def test_hours_rolled_up_keep_the_average_and_peak_and_join_the_raw_hours(tmp_path: Path) -> None:
    """Raw samples older than RETENTION_RAW_DAYS are deleted once rolled up into hours: their steps
    have no lowest and highest pod, and the line runs on into the raw samples without a gap."""
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", retention_raw_days=1,
                             retention_hourly_days=90, collect_interval_seconds=INTERVAL)
    conn = connect(settings.database_path)
    random_history(History(conn), NOW, hours=40)
    apply_retention(settings, clock=lambda: NOW)
    container_id = conn.execute("SELECT MIN(id) FROM containers").fetchone()[0]
    watermark = conn.execute(f"SELECT MIN({SAMPLE_TS}) FROM {SAMPLES}").fetchone()[0]
    window = parse_window("2d", NOW, 90)
    span = data_span(conn, [container_id], window)
    assert span is not None and span.first < watermark - 12 * 3600

    points = usage_series(conn, [container_id], window, series_step(span, INTERVAL))[container_id]
    conn.close()

    rolled = [p for p in points if p.ts < watermark - 3600]
    assert rolled and all(p.seconds == 3600 and p.cpu_low_millicores is None and p.cpu_avg_millicores for p in rolled)
    chart = usage_chart(CPU, "CPU", points, {}, INTERVAL)
    (average,) = [drawn for drawn in chart.lines if drawn.line.key == "avg"]
    assert len(average.paths) == 1
    assert chart.start == points[0].ts == span.first // 3600 * 3600


def test_markers_are_drawn_at_their_time_on_the_charts_they_fall_in() -> None:
    points = [Point(1000 + 300 * n, 300, 100.0, 90.0, 110.0, 120.0, 200.0, 400.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0)
              for n in range(11)]
    inside, outside = Marker(1750, "CPU request 500m -> 200m"), Marker(9000, "later")

    chart = usage_chart(CPU, "CPU", points, {"p95": 110.0, "recommended": 110.0}, 300, [inside, outside])

    assert [(placed.marker, placed.x) for placed in chart.markers] == [(inside, "250.0")]
    assert chart.data["markers"] == [[1750, "CPU request 500m -> 200m"]]


def test_tables_sort_by_any_column_with_missing_values_last(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)  # one container has no memory request

    names = {}
    for direction in ("desc", "asc"):
        table = rows(page(settings, group="container", order="memory_request", dir=direction))
        names[direction] = [(row[0], row[1], row[2]) for row in table]
        requests = [row[9] for row in table]
        assert requests[-1] == "-", "no request: last whichever the direction"
    body = json.loads(report_answer(Request(EnvironBuilder(path="/", query_string={
        "sort": "memory_request", "limit": "all"}).get_environ()), settings, clock=lambda: NOW)[0])
    expected = [(c["namespace"], f"{c['workload_kind']}/{c['workload_name']}", c["container"])
                for c in body["containers"]]
    assert names["desc"] == expected
    assert names["asc"] == [*reversed(expected[:-1]), expected[-1]]


def test_a_table_pages_and_its_links_keep_the_view(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)

    first = page(settings, group="container", order="cpu_p95", limit="4", window="24h")
    last = page(settings, group="container", order="cpu_p95", limit="4", window="24h", page="3")
    beyond = page(settings, group="container", order="cpu_p95", limit="4", window="24h", page="9")

    assert len(rows(first)) == 4 and len(rows(last)) == 1 and rows(beyond) == rows(last)
    assert "1&ndash;4 of 9" in first and "9&ndash;9 of 9" in last
    links = set(re.findall(r'href="(\?[^"]*page=\d[^"]*)"', first))
    assert html.unescape(min(links)) == "?group=container&order=cpu_p95&limit=4&window=24h&format=html&page=2"
    header = re.search(r'data-column="cpu_p95"><a href="([^"]+)"', first)
    assert header is not None and html.unescape(header.group(1)) == \
        "?group=container&order=cpu_p95&limit=4&window=24h&format=html&dir=asc"


def test_views_follow_the_filters_and_link_to_each_other(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)

    cluster = page(settings)
    namespace = page(settings, namespace="payments")
    workload = page(settings, namespace="payments", workload="Deployment/api-1")

    assert [row[0] for row in rows(cluster)] == ["payments", "batch", "shop"]  # most idle CPU first
    assert 'href="?format=html&amp;namespace=payments"' in cluster
    assert [row[1] for row in rows(namespace)] == ["Deployment/api-1", "StatefulSet/db-1"]
    assert 'href="?format=html&amp;namespace=payments&amp;workload=Deployment%2Fapi-1"' in namespace
    assert re.findall(r'<section class="container" id="container-(\w+)"', workload) == ["app", "proxy"]
    assert len(charts(workload)) == 4 and "<table id=\"rows\"" not in workload
    crumbs = re.findall(r'<li><a href="([^"]+)">', workload)[:2]
    assert crumbs == ["?format=html", "?format=html&amp;namespace=payments"]


def test_a_risk_flag_filters_the_rows_to_those_carrying_it(db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)

    body = page(settings, group="container", flag="oom_killed")

    assert [row[-1] for row in rows(body)] == ["OOM-killed, memory near limit, no limits"]
    assert re.search(r'<li class="card risk"><a href="([^"]+)"><b>1</b><span>OOM-killed', body)


@pytest.mark.parametrize(("params", "message"), [
    ({"group": "pods"}, "group: 'pods' is not one of namespace, workload, container in this view"),
    ({"namespace": "shop", "group": "namespace"}, "group: 'namespace' is not one of workload, container"),
    ({"order": "color"}, "order: 'color' is not a column of this table; use namespace, containers,"),
    ({"dir": "up"}, "dir: 'up' is not asc or desc"),
    ({"page": "0"}, "page: '0' is not a page number from 1"),
    ({"flag": "sad"}, "flag: 'sad' is not one of oom_killed,"),
    ({"colour": "red"}, "colour: unknown parameter"),
])
def test_bad_page_parameters_are_named(db: tuple[sqlite3.Connection, Settings], params: dict, message: str) -> None:
    _, settings = db
    request = Request(EnvironBuilder(path="/", query_string={**params, "format": "html"}).get_environ())
    with pytest.raises(InvalidInput) as raised:
        report_answer(request, settings, clock=lambda: NOW)
    assert str(raised.value).startswith(message)


def test_downloads_are_the_same_report_without_the_pages_own_parameters(
        db: tuple[sqlite3.Connection, Settings]) -> None:
    conn, settings = db
    random_history(History(conn), NOW, hours=3)

    body = page(settings, namespace="shop", window="24h", group="container", order="cpu_p95", limit="2", page="2")

    footer = re.search(r"<footer>.*</footer>", body, re.S)
    assert footer is not None
    assert [html.unescape(link) for link in re.findall(r'href="([^"]+)"', footer.group(0))] == [
        "?namespace=shop&window=24h&format=json", "?namespace=shop&window=24h&format=csv"]
