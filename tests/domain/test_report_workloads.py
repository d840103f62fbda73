"""Workloads in the report beyond their usage: gone ones, HPAs at their maximum over the window, policies and
groups as stored by the collection; hand-computed from histories written sample by sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.settings import Settings, load_settings
from shared.domain.report.build import build_report
from shared.domain.report.output import report_json, report_patches
from shared.domain.report.query import parse_report_query
from shared.store.connection import open_store, transaction
from shared.store.dialect import Connection
from shared.store.window_usage import parse_window
from tests.conftest import BACKENDS
from tests.support.report_history import History, Sample, random_history, reference_recommendation, reference_report

MiB = 1024**2
START = 1_768_089_600  # 2026-01-11T00:00:00Z
RUNS = 12

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def db(tmp_path: Path, backend: dict[str, object]) -> Iterator[tuple[Connection, Settings]]:
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", **backend)
    conn = open_store(settings)
    yield conn, settings
    conn.close()


def report(conn: Connection, settings: Settings, now: int, **params: str) -> dict:
    query = parse_report_query({"window": "6h", "limit": "all", **params}, settings, now)
    return report_json(build_report(conn, query, settings, now))


def by_workload(body: dict) -> dict[str, dict]:
    return {c["workload_name"]: c for c in body["containers"]}


def test_a_gone_workload_stays_marked_with_when_it_was_last_seen_and_out_of_savings(
        db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    preview = history.container("shop", "Deployment", "preview", "app")
    for run in range(RUNS):  # both request 500m and use 100m (p95 100m: lower); preview is deleted after run 5
        history.add(api, START + run * 300, Sample())
        if run < 6:
            history.add(preview, START + run * 300, Sample(pod="preview-0"))
    history.add(preview, START + 6 * 300, Sample(pod="preview-0", cpu_usage_avg_millicores=None, phase="Pending"))
    now = START + RUNS * 300
    body = report(conn, settings, now, sort="name")
    found = by_workload(body)

    assert (found["api"]["gone"], found["api"]["last_seen"]) == (False, "2026-01-11T00:55:00Z")
    assert (found["preview"]["gone"], found["preview"]["last_seen"]) == (True, "2026-01-11T00:30:00Z")
    assert found["preview"]["reasons"]["gone"] == (
        "not seen by the newest collection of namespace shop; last seen 2026-01-11 00:30 UTC. Left out of savings; "
        "its recommendation stays for anyone who recreates it")
    # its recommendation is there (7 usage samples: fewer than 12, so not enough data for a value)...
    assert found["preview"]["actions"]["cpu_request"] == "unknown"
    assert found["preview"]["costs"]["savings_excluded"] == "gone"
    assert body["cluster"]["gone_containers"] == 1
    # ... and the savings are api's only: 500m - 100m, one pod, 0.4 core x 0.031611 x 730
    assert found["api"]["actions"]["cpu_request"] == "lower"
    assert found["api"]["costs"]["savings_per_month"] == pytest.approx(0.4 * 0.031611 * 730 +
                                                                       (256 - 127) / 1024 * 0.004549 * 730, abs=0.01)
    assert body["cluster"]["costs"]["savings_per_month"] == found["api"]["costs"]["savings_per_month"]

    later = report(conn, settings, now, window="20m")
    assert [c["workload_name"] for c in later["containers"]] == ["api"]  # a window without it lists it no more


def test_a_gone_workload_with_changes_gets_no_patch_but_is_named(db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    history = History(conn)
    api = history.container("shop", "Deployment", "api", "app")
    preview = history.container("ci", "Deployment", "preview", "app")
    for run in range(RUNS + 1):
        history.add(api, START + run * 300, Sample())
        if run < RUNS:
            history.add(preview, START + run * 300, Sample(pod="preview-0"))
    history.add(api, START + (RUNS + 1) * 300, Sample())
    now = START + (RUNS + 2) * 300
    query = parse_report_query({"window": "6h", "limit": "all", "sort": "name"}, settings, now)
    text = report_patches(build_report(conn, query, settings, now))
    assert "# no patch for ci/Deployment/preview: gone: not seen by the newest collection\n" in text
    assert "---\n# shop/Deployment/api: saves " in text and "name: preview" not in text


@pytest.mark.parametrize(("at_max", "flagged"), [(6, True), (5, False)])
def test_hpa_at_max_means_at_its_maximum_in_most_of_the_windows_runs(
        db: tuple[Connection, Settings], at_max: int, flagged: bool) -> None:
    conn, settings = db
    history = History(conn)
    web = history.container("shop", "Deployment", "web", "app")
    for run in range(10):
        history.add(web, START + run * 300, Sample())
        history.hpa(START + run * 300, "shop", "web", ("Deployment", "web"), 4, 4 if run < at_max else 3)
    found = by_workload(report(conn, settings, START + 10 * 300))["web"]
    assert found["hpa_at_max"] is flagged
    assert [(h["name"], h["runs"], h["runs_at_max"], h["current_replicas"]) for h in found["hpas"]] == [
        ("web", 10, at_max, 3)]
    if flagged:
        assert {"flag": "hpa_at_max", "reason": "HPA web was at its maximum of 4 replicas in 6 of 10 runs: it cannot "
                "scale out further; raise maxReplicas, or the requests if the pods are starved"} in found["flags"]


def test_stored_policies_and_groups_apply_to_their_workloads(db: tuple[Connection, Settings]) -> None:
    conn, stored = db
    settings = stored.model_copy(update={"report_group_by_label": "team"})
    history = History(conn)
    strict = history.container("shop", "Deployment", "strict", "app")
    other = history.container("shop", "Deployment", "other", "app")
    stale = history.container("data", "Deployment", "stale", "app")
    history.metadata("shop", "Deployment", "strict", {"k8s-monitor.io/cpu-percentile": "50",
                                                      "k8s-monitor.io/min-cpu": "30m"}, "team", "storefront")
    history.metadata("shop", "Deployment", "other", {}, "team", None)
    history.metadata("data", "Deployment", "stale", {}, "squad", "data")  # collected under another label
    for run in range(20):  # CPU 5m, 10m, ... 100m: p50 = 50m, p95 = 95m
        for container in (strict, other, stale):
            history.add(container, START + run * 300, Sample(cpu_usage_avg_millicores=5 * (run + 1)))
    body = report(conn, settings, START + 20 * 300)
    found = by_workload(body)
    assert found["strict"]["recommended_cpu_request_millicores"] == 50
    assert found["strict"]["reasons"]["recommended_cpu_request_millicores"] == "p50 of 20 samples over 1.7h"
    assert found["other"]["recommended_cpu_request_millicores"] == 95
    assert [found[name]["group"] for name in ("strict", "other", "stale")] == ["storefront", None, None]
    assert {name: totals["containers"] for name, totals in body["groups"].items()} == {"(none)": 2, "storefront": 1}


def test_recommendations_confidence_and_money_equal_an_independent_computation(
        db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    now = 1_768_136_400  # 2026-01-11T13:00:00Z
    history = History(conn)
    with transaction(conn):
        random_history(history, now, hours=60)  # under-provisioned: raises, one OOM-killed container
        idle = [history.container(namespace, "Deployment", "idle", "app") for namespace in ("shop", "kube-system")]
        young = history.container("shop", "Deployment", "young", "app")
        for step in range(60 * 12):  # over-provisioned (500m for 100m, 256Mi for 110Mi), one in kube-system
            for container in idle:
                history.add(container, now - step * 300, Sample(pod="idle-0"))
            if step < 36:  # 3 hours of history: low confidence
                history.add(young, now - step * 300, Sample(pod="young-0", cpu_usage_avg_millicores=450))
    window = parse_window("2d", now, 90)
    body = report(conn, settings, now, window="2d", sort="name")
    expected = reference_report(conn, window.start, window.end)
    assert len(body["containers"]) == len(expected) == 12
    savings = fix = 0.0
    for c in body["containers"]:
        want = reference_recommendation(expected[(c["namespace"], c["workload_name"], c["container"])],
                                        excluded=c["namespace"] == "kube-system")
        for name in ("recommended_cpu_request_millicores", "recommended_memory_request_bytes", "confidence"):
            assert c[name] == want[name], (c["workload_name"], c["container"], name)
        assert (c["actions"]["cpu_request"], c["actions"]["memory_request"]) == (
            want["cpu_request_action"], want["memory_request_action"])
        for name in ("requested_per_month", "idle_per_month", "savings_per_month", "cost_to_fix_risk_per_month"):
            assert c["costs"][name] == pytest.approx(want[name], abs=0.01), (c["container"], name)
        assert c["costs"]["savings_counted"] is want["counted"]
        if want["counted"]:
            savings += want["savings_per_month"]
            fix += want["cost_to_fix_risk_per_month"]
    assert body["cluster"]["costs"]["savings_per_month"] == pytest.approx(savings, abs=0.01)
    assert body["cluster"]["costs"]["cost_to_fix_risk_per_month"] == pytest.approx(fix, abs=0.01)
    found = {(c["namespace"], c["workload_name"]): c for c in body["containers"]}
    assert found[("shop", "idle")]["costs"]["savings_per_month"] > 0 and savings > 0 and fix > 0
    assert found[("shop", "young")]["low_confidence"] and found[("shop", "young")]["confidence"] == 0.02
    oom = [c for c in body["containers"] if c["oom_killed"]]
    assert len(oom) == 1
    assert oom[0]["reasons"]["recommended_memory_request_bytes"].startswith("OOM-killed in the window")
    ordered = report(conn, settings, now, window="2d", sort="savings")["containers"]
    confident = [c for c in ordered if not c["low_confidence"]]
    assert ordered[:len(confident)] == confident  # low confidence last
    assert [c["costs"]["savings_per_month"] for c in confident] == sorted(
        (c["costs"]["savings_per_month"] for c in confident), reverse=True)
    assert ordered[0]["workload_name"] == "idle"
