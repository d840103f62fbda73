"""The report function over HTTP on the real functions-framework server, and its pages in Chromium.

Screenshots of every view at 1400 and 390 px wide, light and dark, are written to test-artifacts/
(kept by CI): look at them after changing the page.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from shared.core.formats import MiB
from shared.domain.report.assets import page_script, page_stylesheet
from shared.store.connection import connect
from tests.support.report_history import SAMPLE_TS, SAMPLES, History, random_history
from tests.support.servers import REPO, function_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"
INTERVAL = 300
VIEWS = {"cluster": "?window=24h", "containers": "?window=24h&group=container&limit=6",
         "namespace": "?window=24h&namespace=payments",
         "workload": "?window=24h&namespace=payments&workload=Deployment/api-1"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 hours of history ending now (the server reads the real clock)."""
    path = tmp_path_factory.mktemp("report") / "k8s_metrics.db"
    conn = connect(path)
    random_history(History(conn), int(time.time()) // INTERVAL * INTERVAL, hours=30)
    conn.close()
    return path


@pytest.fixture(scope="module")
def server(database: Path) -> Iterator[str]:
    env = {"DATABASE_PATH": str(database), "COLLECT_INTERVAL_SECONDS": str(INTERVAL), "LOG_LEVEL": "WARNING"}
    with function_server("report", env, log_path=database.with_name("server.log")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # No skip: a browser that cannot start fails the test with the reason.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def problems() -> list[str]:
    return []


def open_page(browser: Browser, problems: list[str], width: int = 1400, **options: object) -> Page:
    """A page whose console errors, script errors (a refused inline script or style among them: the
    Content-Security-Policy reports them as errors) and failed requests land in `problems`."""
    page = browser.new_context(viewport={"width": width, "height": 900}, **options).new_page()  # type: ignore[arg-type]
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    return page


def query(database: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def container_id(database: Path, namespace: str, workload: str, container: str) -> int:
    ((found,),) = query(database, "SELECT c.id FROM containers c JOIN workloads w ON w.id = c.workload_id"
                                  " WHERE w.namespace = ? AND w.name = ? AND c.name = ?",
                        namespace, workload, container)
    return found


def test_the_function_answers_json_by_default_and_csv_on_request(server: str) -> None:
    body = requests.get(server, timeout=30).json()
    assert body["containers_total"] == 9 and len(body["containers"]) == 9
    assert body["window"]["label"] == "7d" and body["filters"]["limit"] == 100
    csv = requests.get(f"{server}/report", params={"format": "csv", "namespace": "shop"}, timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.headers["Content-Disposition"] == 'attachment; filename="k8s-resource-report-7d.csv"'
    assert len(csv.text.splitlines()) == 1 + 3


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    ("/", {"window": "7x"}, 400, "window: '7x' is not a duration like 24h, 7d or 2w"),
    ("/", {"limit": "0"}, 400, "limit: '0' is not a number from 1 to 100000 (or 'all')"),
    ("/", {"format": "xml"}, 400, "format: 'xml' is not one of json, csv, html"),
    ("/", {"namespaces": "shop"}, 400, "namespaces: unknown parameter"),
    ("/", {"format": "html", "order": "colour"}, 400, "order: 'colour' is not a column of this table"),
    ("/", {"order": "cpu_idle"}, 400, "order: unknown parameter"),  # JSON has `sort`; `order` is the page's
    ("/elsewhere", {}, 404, "nothing at /elsewhere; the report is at / (or /report)"),
])
def test_bad_requests_get_a_4xx_naming_what_is_wrong(server: str, path: str, params: dict, status: int,
                                                     message: str) -> None:
    answer = requests.get(server + path, params=params, timeout=30)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message)


def test_only_get_is_allowed(server: str) -> None:
    answer = requests.post(server, json={}, timeout=30)
    assert answer.status_code == 405 and answer.json()["error"] == "method POST not allowed; use GET"


def test_the_page_carries_its_own_small_assets_under_a_policy_allowing_only_them(server: str) -> None:
    answer = requests.get(server, params={"format": "html"}, timeout=30)
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["Cache-Control"] == "no-store"
    assert f"<style>{page_stylesheet()}</style>" in answer.text and f"<script>{page_script()}</script>" in answer.text
    assert len(page_stylesheet().encode()) + len(page_script().encode()) < 150 * 1024
    assert not re.search(r'(src|href|action)="(https?:)?//', answer.text)  # nothing fetched from elsewhere


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 390])
def test_every_view_renders_without_errors_and_fits_the_screen(
        server: str, browser: Browser, problems: list[str], width: int, scheme: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, problems, width, color_scheme=scheme)
    for view, params in VIEWS.items():
        answer = page.goto(f"{server}/{params}")
        assert answer is not None and answer.status == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"  # the browser asked for HTML
        assert page.title().startswith("default: ")
        # wide tables scroll inside their frame; the page itself never scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= width, view
        if view == "workload":
            plot = page.locator(".plot").first
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
            assert page.locator(".tip:visible").count() == 1
        page.screenshot(path=str(ARTIFACTS / f"report-{view}-{width}-{scheme}.png"), full_page=view != "workload")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(part) for part in background[4:-1].split(","))
    assert (red + green + blue < 120) == (scheme == "dark"), background  # the theme follows the system's
    assert problems == []


def test_each_chart_starts_at_its_first_sample_and_draws_request_and_limit_where_set(
        server: str, browser: Browser, database: Path, problems: list[str]) -> None:
    page = open_page(browser, problems)
    workloads = query(database, "SELECT DISTINCT namespace, kind || '/' || name FROM workloads")
    assert len(workloads) == 6
    checked = 0
    for namespace, workload in workloads:
        page.goto(f"{server}/?window=24h&namespace={namespace}&workload={workload}")
        window_start = int(page.locator("body").get_attribute("data-window-start") or 0)
        for section in page.locator("section.container").all():
            cid = container_id(database, namespace, workload.split("/")[1], section.get_attribute("data-container"))
            ((first, last, cpu_request, cpu_limit, memory_request, memory_limit),) = query(
                database, f"SELECT MIN({SAMPLE_TS}), MAX({SAMPLE_TS}), MAX(cpu_request_millicores),"
                          f" MAX(cpu_limit_millicores), MAX(memory_request_bytes), MAX(memory_limit_bytes)"
                          f" FROM {SAMPLES} WHERE container_id = ? AND {SAMPLE_TS} >= ?", cid, window_start)
            for figure, request, limit in ((section.locator("figure.chart-cpu"), cpu_request, cpu_limit),
                                           (section.locator("figure.chart-memory"), memory_request, memory_limit)):
                start, end = (int(figure.get_attribute(name) or 0) for name in ("data-start", "data-end"))
                assert abs(start - first) <= INTERVAL and abs(end - last) <= INTERVAL
                lines = figure.locator("polyline.line")
                xs = [float((lines.nth(i).get_attribute("points") or "").split(",")[0]) for i in range(lines.count())]
                first_drawn = start + min(xs) / 1000 * (end - start)
                assert abs(first_drawn - first) <= INTERVAL, (namespace, workload, figure.get_attribute("data-kind"))
                assert (figure.locator("polyline.line-request").count() > 0) == (request is not None)
                assert (figure.locator("polyline.line-limit").count() > 0) == (limit is not None)
                checked += 1
    assert checked == 2 * 9
    assert problems == []


def js_fixed(value: float, digits: int) -> str:
    """JavaScript's Number.prototype.toFixed: the exact binary value rounded half up."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP))


def tip_rows(page: Page) -> dict[str, str]:
    tip = page.locator(".tip:visible")
    return {row.locator("td").nth(1).inner_text(): row.locator("td").nth(2).inner_text()
            for row in tip.locator("tr").all()}


def test_hovering_a_chart_shows_the_stored_values_of_that_step(
        server: str, browser: Browser, database: Path, problems: list[str]) -> None:
    """db-1 has one pod: a step's average is that pod's sample, as stored."""
    page = open_page(browser, problems)
    page.goto(f"{server}/?window=6h&namespace=payments&workload=StatefulSet/db-1")
    cid = container_id(database, "payments", "db-1", "db")
    for kind in ("cpu", "memory"):
        figure = page.locator(f"figure.chart-{kind}")
        plot = figure.locator(".plot")
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        assert box is not None
        start, end = (int(figure.get_attribute(name) or 0) for name in ("data-start", "data-end"))
        stored = query(database, f"SELECT {SAMPLE_TS}, {kind}_{'usage' if kind == 'cpu' else 'working_set'}_avg_"
                                 f"{'millicores' if kind == 'cpu' else 'bytes'},"
                                 f" {kind}_request_{'millicores' if kind == 'cpu' else 'bytes'} FROM {SAMPLES}"
                                 f" WHERE container_id = ? AND {SAMPLE_TS} >= ? AND phase = 'Running' ORDER BY 1",
                                 cid, start)
        ts, value, request = next(row for row in stored[len(stored) // 3:] if row[1] is not None)
        page.mouse.move(box["x"] + box["width"] * (ts - start) / (end - start) + 0.5, box["y"] + box["height"] / 2)

        assert figure.locator(".tip b").inner_text() == time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
        shown = tip_rows(page)
        if kind == "cpu":
            assert (shown["average"], shown["request"]) == (f"{value}m", f"{request}m")
        else:
            assert (shown["average"], shown["request"]) == (f"{js_fixed(value / MiB, 1)}Mi",
                                                            f"{js_fixed(request / MiB, 1)}Mi")
        cursor = figure.locator("line.cursor")
        assert cursor.get_attribute("visibility") == "visible"
    assert problems == []


def test_a_chart_is_read_with_the_keyboard(server: str, browser: Browser, problems: list[str]) -> None:
    page = open_page(browser, problems)
    page.goto(f"{server}/?window=6h&namespace=payments&workload=StatefulSet/db-1")
    for _ in range(60):  # every control before it, then the plot
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('plot')"):
            break
    else:
        pytest.fail("Tab never reached a chart")
    figure = page.locator("figure.chart-cpu")
    data = figure.locator("script.chart-data").evaluate("s => JSON.parse(s.textContent)")
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    before_last = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(data["t"][-2]))
    assert figure.locator(".tip b").inner_text() == before_last
    assert figure.locator(".readout").inner_text().startswith(f"{before_last}: average ")
    page.keyboard.press("Tab")  # leaving the chart hides its read-out
    assert figure.locator(".tip").is_hidden()
    assert problems == []


def test_tables_sort_by_a_header_and_filters_stay_in_the_address(
        server: str, browser: Browser, problems: list[str]) -> None:
    page = open_page(browser, problems)
    page.goto(f"{server}/?window=24h")
    page.select_option("#f-group", "container")
    page.click("button[type=submit]")
    assert "group=container" in page.url
    expected = requests.get(server, params={"window": "24h", "sort": "memory_usage", "limit": "all"},
                            timeout=30).json()["containers"]

    def shown() -> list[tuple[str, str]]:
        return [(row.locator("td").nth(0).inner_text(), row.locator("td").nth(2).inner_text())
                for row in page.locator("#rows tbody tr").all()]

    page.click("th[data-column=memory_peak] a")
    assert "order=memory_peak" in page.url and "dir=desc" in page.url
    assert page.locator("th[data-column=memory_peak]").get_attribute("aria-sort") == "descending"
    by_peak = [(c["namespace"], c["container"]) for c in expected]  # the JSON's sort: highest memory peak first
    assert shown() == by_peak
    page.click("th[data-column=memory_peak] a")
    assert "dir=asc" in page.url and shown() == by_peak[::-1]

    page.select_option("#f-namespace", "payments")
    page.click("button[type=submit]")
    assert "namespace=payments" in page.url and "order=memory_peak" in page.url  # the order stays
    assert {namespace for namespace, _ in shown()} == {"payments"}
    assert page.locator("#f-namespace").input_value() == "payments"

    page.goto(f"{server}/?window=24h&group=container&limit=4")
    assert page.locator("#rows tbody tr").count() == 4
    page.click("a[rel=next]")
    assert "page=2" in page.url and page.locator("#rows tbody tr").count() == 4
    page.select_option("#f-flag", "no_limits")
    page.click("button[type=submit]")
    assert "flag=no_limits" in page.url and "page=" not in page.url
    flags = [row.locator("td").last.inner_text() for row in page.locator("#rows tbody tr").all()]
    assert flags and all("no limits" in text for text in flags)
    assert problems == []


def test_without_javascript_the_page_shows_its_tables_and_charts(server: str, browser: Browser) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=False).new_page()
    page.goto(f"{server}/?window=24h&namespace=payments&workload=Deployment/api-1")
    assert page.locator("figure.chart").count() == 4
    assert page.locator("figure.chart polyline.line-avg").count() >= 4
    assert page.locator("table.numbers").count() == 2
    assert page.locator(".tip").first.is_hidden()
    page.click("nav[aria-label=Breadcrumb] a >> text=payments")  # links and sorting need no script
    page.click("th[data-column=cpu_requested] a")
    assert "order=cpu_requested" in page.url and page.locator("#rows tbody tr").count() == 2


def test_lines_differ_by_dash_pattern_and_width_not_colour_alone(server: str, browser: Browser) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{server}/?window=24h&namespace=payments&workload=Deployment/api-1")
    styles = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('figure.chart-cpu')[0]
        .querySelectorAll('.legend line')].map(l => [l.getAttribute('class'),
        getComputedStyle(l).strokeDasharray + ' / ' + getComputedStyle(l).strokeWidth]))""")
    assert set(styles) == {f"line line-{key}" for key in ("avg", "max", "request", "limit", "p95", "recommended")}
    assert len(set(styles.values())) == len(styles), styles
