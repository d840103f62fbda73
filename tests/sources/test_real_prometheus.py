"""The collector's real queries against a real Prometheus (Debian's, history backfilled with promtool)."""

from __future__ import annotations

import sqlite3

import pytest

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.timeseries import cpu_cores_at, memory_bytes_at
from tests.conftest import FakeClock, make_settings


def test_stored_usage_matches_what_the_scenario_put_in(tmp_path, small_scenario, backfilled_prometheus):
    url, end = backfilled_prometheus
    clock = FakeClock(end)
    with SimulatedCluster(small_scenario, clock=clock) as cluster:
        settings = make_settings(tmp_path, cluster, prometheus_url=url)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    assert body["status"] == "ok", body["error"]
    assert body["prometheus_queries"] == 7

    conn = sqlite3.connect(settings.database_path)
    rows = {
        (ns, pod, container): (cpu_avg, cpu_max, mem_avg, mem_max, throttled)
        for ns, pod, container, cpu_avg, cpu_max, mem_avg, mem_max, throttled in conn.execute(
            """SELECT w.namespace, p.name, c.name, s.cpu_usage_avg_millicores, s.cpu_usage_max_millicores,
                      s.memory_working_set_avg_bytes, s.memory_working_set_max_bytes, s.cpu_throttled_ratio
               FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN pods p ON p.id = cs.pod_id
               JOIN containers c ON c.id = cs.container_id JOIN workloads w ON w.id = c.workload_id"""
        )
    }
    conn.close()
    scrapes = [end - 300 + 60 * k for k in range(6)]
    running = [(p, c) for p in small_scenario.running_pods() for c in p.containers]
    assert running
    for pod, container in running:
        cpu_avg, cpu_max, mem_avg, mem_max, throttled = rows[(pod.namespace, pod.name, container.name)]
        cpu = [cpu_cores_at(small_scenario, pod, container, t) * 1000 for t in scrapes[:-1]]
        memory = [memory_bytes_at(small_scenario, pod, container, t) for t in scrapes]
        assert cpu_avg == pytest.approx(sum(cpu) / len(cpu), rel=0.03, abs=1)
        # the peak of the 2-minute rates evaluated each minute over the window: rate[2m] at p averages the
        # minutes starting at p - 120 s and p - 60 s (the first evaluation reaches back before the window)
        two_minute_rates = [(cpu_cores_at(small_scenario, pod, container, p - 120)
                             + cpu_cores_at(small_scenario, pod, container, p - 60)) * 500 for p in scrapes]
        assert cpu_max == pytest.approx(max(two_minute_rates), rel=0.02, abs=1)
        assert mem_avg == pytest.approx(sum(memory) / len(memory), rel=0.001)
        assert mem_max == pytest.approx(max(memory), rel=0.001)
        if container.cpu_limit_millicores:
            assert throttled == pytest.approx(container.throttled_ratio, abs=0.05)
