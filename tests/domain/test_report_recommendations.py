"""Recommendations from collections of the simulated cluster: its HPAs, its pods' policy annotations and team labels,
read from the API as a collection reads them, stored, and applied by the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.core.settings import Settings
from shared.domain.report.build import build_report
from shared.domain.report.output import report_json
from shared.domain.report.query import parse_report_query
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import team_of
from shared.store.connection import open_store
from tests.conftest import BACKENDS, FakeClock, make_settings

RUNS = 14  # at least REPORT_MIN_SAMPLES (12) samples per pod

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def collect(settings: Settings, clock: FakeClock, runs: int = RUNS) -> list[dict]:
    bodies = []
    for _ in range(runs):
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
        assert status == 200, body
        bodies.append(body)
        clock.advance(settings.collect_interval_seconds)
    return bodies


def report(settings: Settings, clock: FakeClock, **params: str) -> dict:
    conn = open_store(settings, readonly=True)
    try:
        query = parse_report_query({"window": "6h", "limit": "all", **params}, settings, clock.now)
        return report_json(build_report(conn, query, settings, clock.now))
    finally:
        conn.close()


def collected_report(tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> dict:
    """The report's JSON after the collections of the simulated cluster."""
    settings = make_settings(tmp_path, cluster)
    collect(settings, clock)
    return report(settings, clock)


def by_workload(body: dict) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = {}
    for c in body["containers"]:
        found.setdefault((c["namespace"], c["workload_name"]), []).append(c)
    return found


def test_hpas_are_shown_hold_the_requests_they_scale_on_and_flag_one_at_its_maximum(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    body = collected_report(tmp_path, cluster, clock)
    workloads = by_workload(body)
    assert body["hpa_error"] is None
    scenario = cluster.scenario
    assert scenario.hpas, "the scenario has HPAs"
    for hpa in scenario.hpas:
        containers = workloads[(hpa.namespace, hpa.target_name)]
        metric = hpa.metrics[0]
        for c in containers:
            shown = c["hpas"]
            assert [(h["name"], h["min_replicas"], h["max_replicas"], h["current_replicas"], h["runs"])
                    for h in shown] == [(hpa.name, hpa.min_replicas, hpa.max_replicas, hpa.current_replicas, RUNS)]
            at_max = hpa.current_replicas == hpa.max_replicas
            assert c["hpa_at_max"] is at_max and ("hpa_at_max" in {f["flag"] for f in c["flags"]}) is at_max
            assert shown[0]["runs_at_max"] == (RUNS if at_max else 0)
            held = metric.resource is not None and (metric.container in (None, c["container"]))
            action = c["actions"][f"{metric.resource or 'cpu'}_request"]
            reason = c["reasons"][f"recommended_{metric.resource or 'cpu'}_request_"
                                  f"{'bytes' if metric.resource == 'memory' else 'millicores'}"]
            if c["policy"]["ignored"]:
                assert action == "keep" and reason.startswith("ignored: ")
            elif held:
                assert action == "keep" and reason.startswith("keep ") and f"HPA {hpa.name} scales the workload" \
                    in reason, reason
            else:
                assert f"HPA {hpa.name}" not in reason
    external = next(h for h in scenario.hpas if h.metrics[0].type == "External")
    assert workloads[(external.namespace, external.target_name)][0]["hpas"][0]["metrics"][0]["description"] == \
        "External metric"


def test_hpas_held_back_by_rbac_make_the_run_partial_and_every_recommendation_say_so(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset({"horizontalpodautoscalers"})))
    settings = make_settings(tmp_path, cluster)
    runs = collect(settings, clock)
    assert {run["status"] for run in runs} == {"partial"}
    assert "Kubernetes HPAs: missing RBAC permission: verb 'list' on resource 'horizontalpodautoscalers' in API " \
           "group autoscaling" in runs[-1]["error"]
    body = report(settings, clock)
    assert body["hpa_error"].startswith("missing RBAC permission: verb 'list' on resource 'horizontalpodautoscalers'")
    assert body["containers"] and all(c["hpas"] == [] for c in body["containers"])
    assert all(c["reasons"]["hpa"].startswith("HPAs could not be listed by the newest collection (missing RBAC")
               for c in body["containers"])


def test_policy_annotations_apply_per_workload_and_bad_values_are_named(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    body = collected_report(tmp_path, cluster, clock)
    workloads = by_workload(body)
    policies = cluster.scenario.policies
    assert len(policies) >= 4
    for (namespace, workload), annotated in policies.items():
        for c in workloads[(namespace, workload)]:
            assert c["policy"]["annotations"] == annotated
            if annotated.get("k8s-monitor.io/ignore") == "true":
                assert c["policy"]["ignored"] and c["recommendation"] == "keep"
                assert c["costs"]["savings_excluded"] == "ignored by annotation"
            if annotated.get("k8s-monitor.io/memory-headroom") == "plenty":
                assert c["policy"]["errors"] == [
                    "k8s-monitor.io/memory-headroom: 'plenty' is not a fraction or percentage, like 0.2 or 20%; "
                    "REPORT_MEMORY_HEADROOM (15%) is used"]
                assert c["reasons"]["policy_errors"] == c["policy"]["errors"][0]
            if annotated.get("k8s-monitor.io/cpu-percentile") == "99" and c["actions"]["cpu_request"] != "keep":
                assert c["reasons"]["recommended_cpu_request_millicores"].startswith("p99 of ")
    unannotated = [c for key, cs in workloads.items() if key not in policies for c in cs]
    assert unannotated and all(c["policy"] == {"ignored": False, "annotations": {}, "errors": []}
                               for c in unannotated)


def test_savings_are_grouped_by_a_pod_label_and_excluded_namespaces_left_out(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, report_group_by_label="team")
    collect(settings, clock)
    body = report(settings, clock)
    containers = body["containers"]
    assert body["group_by_label"] == "team"
    assert set(body["groups"]) == {team_of(c["namespace"]) for c in containers}
    for team, totals in body["groups"].items():
        members = [c for c in containers if team_of(c["namespace"]) == team]
        assert all(c["group"] == team for c in members)
        assert totals["containers"] == len(members)
        counted = sum(c["costs"]["savings_per_month"] for c in members if c["costs"]["savings_counted"])
        assert abs(totals["costs"]["savings_per_month"] - counted) <= 0.01 * len(members)
    kube_system = [c for c in containers if c["namespace"] == "kube-system"]
    assert kube_system and all(not c["costs"]["savings_counted"] and
                               c["costs"]["savings_excluded"] == "namespace in REPORT_SAVINGS_EXCLUDE"
                               for c in kube_system)
    cluster_savings = sum(c["costs"]["savings_per_month"] for c in containers if c["costs"]["savings_counted"])
    assert abs(body["cluster"]["costs"]["savings_per_month"] - cluster_savings) <= 0.01 * len(containers)
    assert body["cluster"]["costs"]["savings_per_month"] > 0
