"""The report function over HTTP on the real functions-framework server, and its page in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import sync_playwright

from shared.store.connection import connect
from tests.support.report_history import History, random_history
from tests.support.servers import REPO, function_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The report function over 30 hours of history ending now (the server reads the real clock)."""
    path = tmp_path_factory.mktemp("report") / "k8s_metrics.db"
    conn = connect(path)
    random_history(History(conn), int(time.time()) // 300 * 300, hours=30)
    conn.close()
    env = {"DATABASE_PATH": str(path), "COLLECT_INTERVAL_SECONDS": "300", "LOG_LEVEL": "WARNING"}
    with function_server("report", env, log_path=path.with_name("server.log")) as url:
        yield url


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


def test_the_page_renders_charts_with_data_and_its_filter_works(server: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        # No skip: a browser that cannot start fails the test with the reason.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            answer = page.goto(f"{server}/?window=24h&sort=name")
            assert answer is not None and answer.status == 200
            assert answer.headers["content-type"] == "text/html; charset=utf-8"  # the browser asked for HTML
            assert page.title() == "default: Requests vs usage over 24h - k8s-resource-monitor"

            charts = page.locator("svg.chart")
            assert charts.count() == 2 * 9  # CPU and memory of every container
            points = [int(charts.nth(i).get_attribute("data-points") or 0) for i in range(charts.count())]
            assert min(points) > 20, points
            first_line = page.locator("svg.chart polyline.avg").first
            assert len((first_line.get_attribute("points") or "").split()) > 20
            box = first_line.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 5  # drawn, not collapsed
            assert page.locator("#totals .card").first.inner_text().endswith("CPU requested (average)")
            assert page.locator("section.workload").count() == 6

            page.screenshot(path=str(ARTIFACTS / "report-page.png"), full_page=False)

            page.select_option("select[name=namespace]", "payments")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            assert "namespace=payments" in page.url
            namespaces = {page.locator("section.workload").nth(i).get_attribute("data-namespace")
                          for i in range(page.locator("section.workload").count())}
            assert namespaces == {"payments"}
            assert page.locator("svg.chart").count() == 2 * 3
            assert page.locator("select[name=namespace]").input_value() == "payments"
            page.screenshot(path=str(ARTIFACTS / "report-page-payments.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
