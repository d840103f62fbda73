"""The report page in Chromium with what rightsizing adds, from a real history: an HPA, the confidence of a
recommendation, money, the patch to apply, a change marker and a workload that is gone.

Each is asserted where a user sees it, so the page fails this test when one goes missing; the values
are stated by hand or read from the same server's JSON and patch answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page

from shared.core.formats import utc_minute
from shared.store.connection import connect
from tests.domain.test_report_page import ARTIFACTS, browser, open_page
from tests.support.report_history import History, Sample
from tests.support.servers import function_server

__all__ = ["browser"]  # the module's Chromium, shared with the page's other tests

INTERVAL = 300
NOW = int(time.time()) // INTERVAL * INTERVAL  # the server reads the real clock
RUNS = 12 * 3600 // INTERVAL  # 12 hours of runs, the newest at NOW
CHANGE = NOW - 6 * 3600  # the rollout halving api's CPU request: its new pods' first run
GONE = NOW - 3 * 3600  # old-job's last sample is the run before


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("rightsizing") / "k8s_metrics.db"
    conn = connect(path)
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    job = history.container("ci", "Deployment", "old-job", "app")
    for run in range(RUNS):  # oldest first, as collections store them
        ts = NOW - (RUNS - 1 - run) * INTERVAL
        for pod in ("a", "b") if ts < CHANGE else ("c", "d"):
            history.add(api, ts, Sample(pod=f"api-{pod}", cpu_request_millicores=1000 if ts < CHANGE else 500))
        history.hpa(ts, "shop", "api", ("Deployment", "api"), max_replicas=4, current_replicas=4)
        if ts < GONE:
            history.add(job, ts, Sample(pod="job-x"))
    conn.commit()
    conn.close()
    env = {"DATABASE_PATH": str(path), "COLLECT_INTERVAL_SECONDS": str(INTERVAL), "LOG_LEVEL": "WARNING"}
    with function_server("report", env, log_path=path.with_name("server.log")) as url:
        yield url


def workload_view(browser: Browser, problems: list[str], server: str, workload: str) -> Page:
    page = open_page(browser, problems)
    namespace, kind_name = workload.split("/", 1)
    answer = page.goto(f"{server}/?window=24h&namespace={namespace}&workload={kind_name}")
    assert answer is not None and answer.status == 200
    return page


def test_the_workload_view_shows_the_hpa_confidence_change_marker_and_patch(server: str, browser: Browser) -> None:
    problems: list[str] = []
    page = workload_view(browser, problems, server, "shop/Deployment/api")
    section = page.locator("section.container[data-container=app]")

    assert section.locator("dd.hpa").inner_text() == "HPA api: 1 to 4 replicas, 4 now, scaling on CPU utilisation 70%"
    why = dict(zip(section.locator("dl.why dt").all_inner_texts(), section.locator("dl.why dd").all_inner_texts(),
                   strict=True))
    assert "REPORT_CPU_LIMIT_POLICY" in why["CPU limit"] and "REPORT_MEMORY_LIMIT_POLICY" in why["Memory limit"]
    assert why["CPU request"] != why["CPU limit"] and why["Memory request"] != why["Memory limit"]
    assert "HPA at max" in section.locator("p.flags").inner_text()
    # 144 runs of 2 pods: 12h - 5 min of history / 7d = 0.07, 288 samples / 2016 = 0.14: the lower
    assert section.locator("dd.confidence").inner_text().startswith("7% (low): min(1, ")
    for kind in ("cpu", "memory"):
        chart = section.locator(f"figure.chart-{kind}")
        assert chart.locator("line.marker").count() == 1, kind
        assert chart.locator("ul.markers li").all_inner_texts() == [f"{utc_minute(CHANGE)} CPU request 1000m -> 500m"]

    patches = requests.get(server, params={"window": "24h", "namespace": "shop", "format": "patch"}, timeout=30).text
    shown = page.locator("section.patch pre code").inner_text()
    assert shown.strip() in patches and "name: api" in shown and "namespace: shop" in shown
    assert "kubectl -n shop patch deployment api --patch-file FILE" in page.locator("section.patch").inner_text()
    page.screenshot(path=str(ARTIFACTS / "report-workload-rightsizing-1400-light.png"), full_page=True)
    assert problems == []


def test_a_gone_workload_says_when_it_was_last_seen(server: str, browser: Browser) -> None:
    problems: list[str] = []
    page = workload_view(browser, problems, server, "ci/Deployment/old-job")
    why = page.locator("section.container[data-container=app] dl.why")
    assert why.locator("dt", has_text="Gone").count() == 1
    assert f"last seen {utc_minute(GONE - INTERVAL)}; left out of savings" in why.inner_text()
    assert problems == []


def test_the_cluster_view_shows_money_as_the_json_reports_it(server: str, browser: Browser) -> None:
    problems: list[str] = []
    page = open_page(browser, problems)
    page.goto(f"{server}/?window=24h")
    costs = requests.get(server, params={"window": "24h"}, timeout=30).json()["cluster"]["costs"]
    assert costs["idle_per_month"] > 0 and costs["savings_per_month"] > 0
    cards = {card.locator("span").first.inner_text(): card.locator("b").inner_text()
             for card in page.locator("#totals .card").all()}
    assert cards["idle cost a month"] == f"{costs['idle_per_month']:,.2f} USD"
    assert cards["savings a month"] == f"{costs['savings_per_month']:,.2f} USD"
    assert cards["cost of fixing risks a month"] == f"{costs['cost_to_fix_risk_per_month']:,.2f} USD"
    # the namespaces table: ci's savings do not count (old-job is gone), shop's do
    rows = {row.locator("td").first.inner_text(): row for row in page.locator("#rows tbody tr").all()}
    savings = page.locator("#rows thead tr").last.locator("th").evaluate_all(
        "headers => headers.map(h => h.dataset.column)").index("savings")
    assert rows["ci"].locator("td").nth(savings).inner_text() == "0.00"
    assert rows["shop"].locator("td").nth(savings).inner_text() == f"{costs['savings_per_month']:,.2f}"

    page.goto(f"{server}/?window=24h&group=container")  # every container with its confidence and savings
    api = next(c for c in requests.get(server, params={"window": "24h"}, timeout=30).json()["containers"]
               if c["workload_name"] == "api")
    header = page.locator("#rows thead tr").last.locator("th").evaluate_all("hs => hs.map(h => h.dataset.column)")
    row = page.locator("#rows tbody tr", has_text="api").locator("td")
    assert row.nth(header.index("confidence")).inner_text() == "7% (low)"
    assert row.nth(header.index("savings")).inner_text() == f"{api['costs']['savings_per_month']:,.2f}" != "0.00"
    assert problems == []
