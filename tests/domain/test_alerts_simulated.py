"""A simulated cluster with OOM-killed, throttled, crash-looping and memory-tight containers: the
collection fires exactly the alerts the scenario implies, tells each once, again per repeat
interval, and tells when the cluster heals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import Scenario, build_scenario
from shared.simulator.timeseries import memory_bytes_at, oom_events_total_at, restart_count_at
from shared.store.connection import open_store
from tests.conftest import BACKENDS, FAKE_CLOCK_START, FakeClock, make_settings
from tests.support.notify_receivers import HttpReceiver, http_receiver

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

INTERVAL = 300
REPEAT = 900
Key = tuple[str, str, str, str, str]  # alert name, namespace, workload kind, workload, container


def expected_alerts(scenario: Scenario, at: float, previous_at: float | None, threshold: float = 0.9) -> set[Key]:
    """The container alerts a run at `at` must fire, worked out from the scenario itself.

    Memory is the peak of the working set over the scrapes (every 60 s) in the collection window;
    restarts rise when the count at `at` is above the count at the previous run. An OOM-killed
    container of the scenario is killed again at each of its restarts, which cAdvisor counts as an
    OOM event: it fires when that happened within the window, not for the kills before the epoch.
    """
    alerts: set[Key] = set()
    scrapes = [at - offset for offset in range(0, INTERVAL + 1, 60)]
    for pod in scenario.pods:
        for c in pod.containers:
            where = (pod.namespace, pod.workload_kind, pod.workload_name, c.name)
            if c.last_termination_reason == "OOMKilled":
                if oom_events_total_at(scenario, pod, c, at) > oom_events_total_at(scenario, pod, c, at - INTERVAL):
                    alerts.add(("ContainerOOMKilled", *where))
            elif previous_at is not None and restart_count_at(scenario, pod, c, at) > restart_count_at(
                    scenario, pod, c, previous_at):
                alerts.add(("ContainerRestarting", *where))
            if c.cpu_limit_millicores and pod.phase == "Running" and c.throttled_ratio > 0.25:
                alerts.add(("CPUThrottled", *where))
            if c.memory_limit_bytes and pod.phase == "Running":
                peak = max(memory_bytes_at(scenario, pod, c, t) for t in scrapes)
                if peak > threshold * c.memory_limit_bytes:
                    alerts.add(("MemoryNearLimit", *where))
    return alerts


def _key(alert: dict) -> Key:
    labels = alert["labels"]
    return (labels["alertname"], labels["namespace"], labels["workload_kind"], labels["workload"], labels["container"])


def _messages_since(receiver: HttpReceiver, start: int) -> list[dict]:
    return [request.json for request in receiver.requests[start:]]


def _told(messages: list[dict], status: str) -> Counter[Key]:
    return Counter(_key(a) for m in messages for a in m["alerts"] if a["status"] == status)


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario(120, seed=11)


def start_before_an_oom_kill(scenario: Scenario) -> float:
    """A run time on the collection grid with an OOM kill in the interval after it, so that the test
    sees a kill fire once and resolve (the scenario's OOM-killed containers die once an hour)."""
    killed = [(pod, c) for pod in scenario.pods for c in pod.containers
              if c.last_termination_reason == "OOMKilled" and pod.phase == "Running"]
    for step in range(3600 // INTERVAL):
        at = FAKE_CLOCK_START + step * INTERVAL
        if any(restart_count_at(scenario, pod, c, at + INTERVAL) > restart_count_at(scenario, pod, c, at)
               for pod, c in killed):
            return at
    raise AssertionError("the scenario has no OOM kill within an hour")


def test_alerts_fire_once_repeat_per_interval_and_resolve_when_healed(tmp_path: Path, scenario: Scenario):
    clock = FakeClock(start_before_an_oom_kill(scenario))
    with SimulatedCluster(scenario, clock=clock) as cluster, http_receiver() as slack, \
            http_receiver("/generic/hook") as webhook:
        settings = make_settings(tmp_path, cluster, slack_webhook_url=slack.url, webhook_url=webhook.url,
                                 alert_repeat_interval_seconds=REPEAT, collect_interval_seconds=INTERVAL)

        def collect() -> list[dict]:
            before_slack, before_webhook = len(slack.requests), len(webhook.requests)
            body, status = collect_once(settings, Trigger("schedule"), clock=clock)
            assert (body["status"], status) == ("ok", 200), body
            messages = _messages_since(webhook, before_webhook)
            assert len(slack.requests) - before_slack == len(messages) <= 1  # one warning group per run
            clock.advance(INTERVAL)
            return messages

        t0 = clock.now
        first = collect()
        expected_t0 = expected_alerts(scenario, t0, None)
        assert {"CPUThrottled", "MemoryNearLimit"} <= {key[0] for key in expected_t0}
        assert _told(first, "firing") == Counter(expected_t0)

        t1 = clock.now
        second = collect()
        expected_t1 = expected_alerts(scenario, t1, t0)
        assert any(key[0] == "ContainerRestarting" for key in expected_t1)
        assert _told(second, "firing") == Counter(expected_t1 - expected_t0)
        assert _told(second, "resolved") == Counter(expected_t0 - expected_t1)

        t2 = clock.now
        third = collect()
        expected_t2 = expected_alerts(scenario, t2, t1)
        assert not set(_told(third, "firing")) & (expected_t1 & expected_t2)  # still firing: not told again
        assert set(_told(third, "firing")) == expected_t2 - expected_t1

        t3 = clock.now  # a repeat interval after t0: what fired since t0 without a break is told again
        fourth = collect()
        expected_t3 = expected_alerts(scenario, t3, t2)
        steady = expected_t0 & expected_t1 & expected_t2 & expected_t3
        assert steady
        seen = expected_t0 | expected_t1 | expected_t2 | expected_t3
        assert {key[0] for key in seen} == {"ContainerOOMKilled", "ContainerRestarting", "CPUThrottled",
                                            "MemoryNearLimit"}  # the scenario has them all
        killed = {key for key in expected_t1 if key[0] == "ContainerOOMKilled"}
        assert killed and not killed & expected_t2  # told at the kill, resolved at the next run without one
        assert _told(fourth, "firing") == Counter(steady | (expected_t3 - expected_t2))

        cluster.set_scenario(scenario.healed(t3))  # fixed right after the run at t3
        healed = collect()
        still = {key for key in expected_t3 if key[0] == "ContainerRestarting"}  # rose within the last hour
        assert set(_told(healed, "resolved")) == expected_t3 - still
        # the restart alerts first told at t1 are a repeat interval old now: told again, still firing
        assert _told(healed, "firing") == Counter(still & expected_t1 & expected_t2)

        clock.advance(3600)
        last = collect()
        assert set(_told(last, "resolved")) == still
        assert collect() == []

    conn = open_store(settings, readonly=True)
    try:
        statuses = dict(conn.execute("SELECT channel || '/' || status, COUNT(*) FROM notifications GROUP BY 1"))
        firing = conn.execute("SELECT COUNT(*) FROM alerts WHERE state = 'firing'").fetchone()[0]
    finally:
        conn.close()
    assert set(statuses) == {"slack/sent", "webhook/sent"}
    assert statuses["slack/sent"] == statuses["webhook/sent"] == len(slack.requests)
    assert firing == 0


def test_a_run_of_one_namespace_leaves_the_alerts_of_the_others_alone(tmp_path: Path, scenario: Scenario):
    """Full run, a run asked for one namespace, full run: nothing outside that namespace is told
    resolved by the narrow run, nor told firing anew by the full run after it."""
    from shared.domain.collection import CollectRequest

    clock = FakeClock()
    with SimulatedCluster(scenario, clock=clock) as cluster, http_receiver("/generic/hook") as webhook:
        settings = make_settings(tmp_path, cluster, webhook_url=webhook.url, collect_interval_seconds=INTERVAL)

        def collect(namespaces: list[str] | None = None) -> list[dict]:
            before = len(webhook.requests)
            body, status = collect_once(settings, Trigger("http"), CollectRequest(namespaces=namespaces), clock=clock)
            assert (body["status"], status) == ("ok", 200), body
            clock.advance(INTERVAL)
            return _messages_since(webhook, before)

        first = _told(collect(), "firing")
        scoped_namespace = min(key[1] for key in first)
        others = {key for key in first if key[1] != scoped_namespace}
        assert others  # alerts on both sides
        scoped = collect([scoped_namespace])
        assert {key[1] for key in _told(scoped, "resolved") + _told(scoped, "firing")} <= {scoped_namespace}
        after = collect()
        steady = {key for key in others if key[0] in ("CPUThrottled", "MemoryNearLimit")}
        assert steady
        assert not steady & set(_told(after, "firing"))  # still firing since the first run: not told again
        assert not steady & set(_told(after, "resolved"))
