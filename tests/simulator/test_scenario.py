"""The simulated cluster's content: deterministic, every category present, values that add up."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from shared.simulator.scenario import build_scenario, qos_class
from shared.simulator.timeseries import (
    cpu_cores_at,
    cpu_seconds_total_at,
    memory_bytes_at,
    oom_events_total_at,
    restart_count_at,
)

T0 = 1_795_000_020.0  # an arbitrary minute boundary in 2026


def test_same_arguments_build_the_same_cluster() -> None:
    assert build_scenario(50, seed=3) == build_scenario(50, seed=3)
    assert build_scenario(50, seed=3).pods != build_scenario(50, seed=4).pods


@pytest.mark.parametrize("pod_count", [20, 100, 1000])
def test_every_category_is_present_at_any_size(pod_count: int) -> None:
    scenario = build_scenario(pod_count)
    assert len(scenario.pods) == pod_count
    assert len(scenario.nodes) == max(3, pod_count // 30 + 1)
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"}
    assert {p.workload_kind for p in scenario.pods} >= kinds
    assert {p.phase for p in scenario.pods} == {"Running", "Pending", "Succeeded"}
    assert {p.qos_class for p in scenario.pods} == {"Guaranteed", "Burstable", "BestEffort"}
    running = [c for p in scenario.running_pods() for c in p.containers]
    checks = {
        "over-provisioned": lambda c: (c.cpu_request_millicores
                                       and c.cpu_usage_millicores < 0.15 * c.cpu_request_millicores),
        "under-provisioned": lambda c: c.cpu_request_millicores and c.cpu_usage_millicores > c.cpu_request_millicores,
        "OOMKilled": lambda c: c.last_termination_reason == "OOMKilled" and c.restart_count > 0 and c.oom_events > 0,
        "throttled": lambda c: c.cpu_limit_millicores and 0.4 <= c.throttled_ratio <= 0.6,
        "crash-looping": lambda c: c.restarts_per_hour > 0 and c.last_termination_reason == "Error",
        "near memory limit": lambda c: c.memory_limit_bytes and c.memory_working_set_bytes > 0.9 * c.memory_limit_bytes,
        "no limits": lambda c: (c.cpu_request_millicores
                                and c.cpu_limit_millicores is None and c.memory_limit_bytes is None),
    }
    for category, check in checks.items():
        assert any(check(c) for c in running), category
    assert any(p.init_containers for p in scenario.pods)
    assert any(len(p.containers) > 1 for p in scenario.pods)


def test_owners_lead_to_the_expected_top_workload() -> None:
    scenario = build_scenario(100)
    for pod in scenario.pods:
        if pod.owner_kind == "ReplicaSet":
            owner = scenario.replicasets[(pod.namespace, pod.owner_name)]
            assert (pod.workload_kind, pod.workload_name) == (owner or ("ReplicaSet", pod.owner_name))
        elif pod.owner_kind == "Job":
            owner = scenario.jobs[(pod.namespace, pod.owner_name)]
            assert (pod.workload_kind, pod.workload_name) == (owner or ("Job", pod.owner_name))
        elif pod.owner_kind is None:
            assert (pod.workload_kind, pod.workload_name) == ("Pod", pod.name)
        else:
            assert (pod.workload_kind, pod.workload_name) == (pod.owner_kind, pod.owner_name)
    owned = {(p.namespace, p.owner_name) for p in scenario.pods if p.owner_kind == "ReplicaSet"}
    assert set(scenario.replicasets) - owned, "old ReplicaSets without pods, as after rollouts"
    daemon_nodes = [p.node for p in scenario.pods if p.workload_name == "kube-proxy"]
    assert sorted(daemon_nodes) == sorted(n.name for n in scenario.nodes)


def test_qos_class_follows_kubernetes_rules() -> None:
    scenario = build_scenario(100)
    for pod in scenario.pods:
        assert pod.qos_class == qos_class(pod.containers + pod.init_containers)
    guaranteed = next(p for p in scenario.pods if p.qos_class == "Guaranteed")
    assert all(c.cpu_request_millicores == c.cpu_limit_millicores and c.memory_request_bytes == c.memory_limit_bytes
               for c in guaranteed.containers + guaranteed.init_containers)


def test_cpu_counter_is_the_exact_integral_of_the_rate() -> None:
    scenario = build_scenario(20)
    pod = scenario.running_pods()[0]
    container = pod.containers[0]
    steps = [cpu_cores_at(scenario, pod, container, T0 + 60 * k) for k in range(10)]
    start = cpu_seconds_total_at(scenario, pod, container, T0)
    increase = cpu_seconds_total_at(scenario, pod, container, T0 + 600) - start
    assert math.isclose(increase, 60 * sum(steps), rel_tol=1e-9)
    midway = cpu_seconds_total_at(scenario, pod, container, T0 + 30) - start
    assert math.isclose(midway, 30 * steps[0], rel_tol=1e-6)
    assert cpu_cores_at(scenario, pod, container, T0 + 59.9) == steps[0]  # piecewise constant per minute
    cores = container.cpu_usage_millicores / 1000
    assert all(0.7 * cores <= s <= 1.3 * cores for s in steps)


def test_usage_never_crosses_limits() -> None:
    scenario = build_scenario(100)
    for pod in scenario.running_pods():
        for c in pod.containers:
            for k in range(30):
                if c.cpu_limit_millicores:
                    assert cpu_cores_at(scenario, pod, c, T0 + 60 * k) <= c.cpu_limit_millicores / 1000 * (1 + 1e-9)
                if c.memory_limit_bytes:
                    assert memory_bytes_at(scenario, pod, c, T0 + 60 * k) < c.memory_limit_bytes


def test_crash_looping_restarts_rise_with_time_and_heal_freezes_them() -> None:
    scenario = build_scenario(100)
    pod, container = next((p, c) for p in scenario.running_pods() for c in p.containers
                           if c.last_termination_reason == "OOMKilled")
    later = scenario.epoch_seconds + 10 * 3600
    assert restart_count_at(scenario, pod, container, scenario.epoch_seconds - 1) == container.restart_count
    assert restart_count_at(scenario, pod, container, later) == container.restart_count + 10
    assert oom_events_total_at(scenario, pod, container, later) == container.oom_events + 10

    healed = scenario.healed(at_seconds=later)
    healed_pod = next(p for p in healed.pods if p.uid == pod.uid)
    fixed = next(c for c in healed_pod.containers if c.name == container.name)
    assert fixed.last_termination_reason is None
    assert restart_count_at(healed, healed_pod, fixed, later + 86400) == container.restart_count + 10
    for p in healed.running_pods():
        for c in p.containers:
            assert c.throttled_ratio == 0
            assert not c.memory_limit_bytes or c.memory_working_set_bytes <= 0.5 * c.memory_limit_bytes


def test_too_small_a_cluster_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        build_scenario(5)


def test_scenario_copies_keep_their_content() -> None:
    scenario = build_scenario(20)
    denied = replace(scenario, denied=frozenset({"nodes"}))
    assert denied.pods is scenario.pods and denied.denied == {"nodes"}
