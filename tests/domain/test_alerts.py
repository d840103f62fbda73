"""Alert rules read the stored history; alert state fires, repeats and resolves once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.core.settings import load_settings
from shared.domain.alerts.evaluation import Evaluation, evaluate_rules, in_cluster
from shared.domain.alerts.model import Alert, fingerprint
from shared.domain.alerts.state import claim_due, list_alerts, release_claim, update_state
from shared.sources.inventory import ContainerRecord, Inventory, PodRecord
from shared.sources.usage import ContainerUsage
from shared.store.connection import open_store, transaction
from shared.store.runs import RunRecord, record_run, store_collection
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

T0 = 1_767_225_600.0
MiB = 2**20


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(database_path=tmp_path / "db.sqlite", cluster_name="prod-eu")
    conn = open_store(settings)
    yield conn, settings
    conn.close()


def _container(name: str = "api", restarts: int = 0, reason: str | None = None,
               memory_limit: int | None = 512 * MiB, cpu_limit: int | None = 500) -> ContainerRecord:
    return ContainerRecord(name, 250, cpu_limit, 256 * MiB, memory_limit, restarts, reason)


def _pod(name: str, *containers: ContainerRecord, workload: str = "api", kind: str = "Deployment",
         namespace: str = "shop") -> PodRecord:
    return PodRecord(namespace, name, f"uid-{namespace}-{name}", "node-1", "Running", "Burstable", "ReplicaSet",
                     f"{workload}-abc", list(containers), kind, workload)


def _store(conn, at: float, pods: list[PodRecord], usage: dict | None = None, status: str = "ok",  # type: ignore[no-untyped-def]
           namespaces: str | None = None) -> int:
    run = RunRecord("schedule", at, at + 1, status, pods=len(pods), namespaces=namespaces)
    return store_collection(conn, run, Inventory(pods, []), usage or {})


def _usage(memory_max: int | None = 100 * MiB, throttled: float | None = 0.0,
           oom: float | None = 0.0) -> ContainerUsage:
    return ContainerUsage(cpu_avg_millicores=100, cpu_max_millicores=200, memory_avg_bytes=memory_max,
                          memory_max_bytes=memory_max, cpu_throttled_ratio=throttled, oom_events=oom)


def _store_oom_killed(conn, at: float, status: str = "ok") -> int:  # type: ignore[no-untyped-def]
    """A run in which cAdvisor counted an OOM kill of shop/api-1's container in the window."""
    return _store(conn, at, [_pod("api-1", _container(reason="OOMKilled"))],
                  {("shop", "api-1", "api"): _usage(oom=1)}, status)


def _firing(conn, settings, now: float) -> dict[str, list[Alert]]:  # type: ignore[no-untyped-def]
    update_state(conn, evaluate_rules(conn, settings, now), now)
    alerts = [a for a in list_alerts(conn, now, 0) if a.status == "firing"]
    by_name: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_name.setdefault(alert.name, []).append(alert)
    return by_name


def test_oom_killed_replicas_make_one_alert_per_workload_container_naming_the_pod(db):
    conn, settings = db
    pods = [_pod("api-abc-1", _container(restarts=2, reason="OOMKilled"), _container("istio-proxy")),
            _pod("api-abc-2", _container(restarts=3, reason="OOMKilled"), _container("istio-proxy")),
            _pod("web-1", _container("web", reason="Error"), workload="web")]
    _store(conn, T0, pods)
    pods = [_pod("api-abc-1", _container(restarts=3, reason="OOMKilled"), _container("istio-proxy")),
            _pod("api-abc-2", _container(restarts=5, reason="OOMKilled"), _container("istio-proxy")),
            _pod("web-1", _container("web", restarts=1, reason="Error"), workload="web")]
    _store(conn, T0 + 300, pods)
    [alert] = _firing(conn, settings, T0 + 305)["ContainerOOMKilled"]
    assert alert.labels == {"alertname": "ContainerOOMKilled", "severity": "warning", "namespace": "shop",
                            "workload_kind": "Deployment", "workload": "api", "container": "api", "cluster": "prod-eu"}
    assert alert.summary == "prod-eu: api in shop/api was OOMKilled"
    assert ("was killed for running out of memory 2 times since the previous collection in 2 pods "
            "(worst: api-abc-2) (5 restarts in all); its memory limit is 512Mi") in alert.description
    assert alert.fingerprint == fingerprint(alert.labels)


def test_an_oom_kill_fires_once_seen_and_resolves_at_the_next_run_without_one(db):
    """Kubernetes keeps `lastState.terminated.reason: OOMKilled` until the next termination: an old
    kill is no news, a rising restart count with that reason is."""
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container(restarts=3, reason="OOMKilled"))])  # killed weeks ago
    assert "ContainerOOMKilled" not in _firing(conn, settings, T0 + 5)
    _store(conn, T0 + 300, [_pod("api-1", _container(restarts=4, reason="OOMKilled"))])
    [alert] = _firing(conn, settings, T0 + 305)["ContainerOOMKilled"]
    assert "killed for running out of memory once since the previous collection in pod api-1" in alert.description
    _store(conn, T0 + 600, [_pod("api-1", _container(restarts=4, reason="OOMKilled"))])
    assert "ContainerOOMKilled" not in _firing(conn, settings, T0 + 605)
    assert [(a.name, a.status) for a in list_alerts(conn, T0 + 605, 3600)] == [("ContainerOOMKilled", "resolved")]
    for minutes in range(15, 5 * 60, 5):  # runs for longer than the repeat interval: it stays resolved
        _store(conn, T0 + 60 * minutes, [_pod("api-1", _container(restarts=4, reason="OOMKilled"))])
        assert "ContainerOOMKilled" not in _firing(conn, settings, T0 + 60 * minutes + 5)


def test_oom_events_counted_by_cadvisor_fire_without_a_restart(db):
    """A process killed inside a container that keeps running: no restart, but an OOM event."""
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container())], {("shop", "api-1", "api"): _usage(oom=0)})
    _store(conn, T0 + 300, [_pod("api-1", _container())], {("shop", "api-1", "api"): _usage(oom=2)})
    [alert] = _firing(conn, settings, T0 + 305)["ContainerOOMKilled"]
    assert "killed for running out of memory 2 times since the previous collection in pod api-1 " \
           "(0 restarts in all)" in alert.description


def test_memory_near_limit_uses_the_peak_working_set_against_the_limit(db):
    conn, settings = db
    pods = [_pod("api-1", _container()), _pod("web-1", _container("web"), workload="web"),
            _pod("db-0", _container("db", memory_limit=None), workload="db", kind="StatefulSet")]
    usage = {("shop", "api-1", "api"): _usage(memory_max=int(0.95 * 512 * MiB)),
             ("shop", "web-1", "web"): _usage(memory_max=int(0.85 * 512 * MiB)),
             ("shop", "db-0", "db"): _usage(memory_max=4096 * MiB)}
    _store(conn, T0, pods, usage)
    [alert] = _firing(conn, settings, T0 + 5)["MemoryNearLimit"]
    assert alert.labels["workload"] == "api"
    assert alert.summary == "prod-eu: api in shop/api uses 95% of its memory limit"
    assert "peaked at 486Mi of its 512Mi limit (95%, above 90%) in pod api-1" in alert.description


def test_cpu_throttling_above_the_threshold_fires(db):
    conn, settings = db
    pods = [_pod("api-1", _container()), _pod("web-1", _container("web"), workload="web")]
    usage = {("shop", "api-1", "api"): _usage(throttled=0.42), ("shop", "web-1", "web"): _usage(throttled=0.2)}
    _store(conn, T0, pods, usage)
    [alert] = _firing(conn, settings, T0 + 5)["CPUThrottled"]
    assert alert.labels["workload"] == "api"
    assert "throttled in 42% of its CPU periods (above 25%) at a limit of 500m, in pod api-1" in alert.description


def test_restarts_rising_within_the_window_fire_until_the_window_passes(db):
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container(restarts=2, reason="Error")),
                      _pod("oom-1", _container("oom", restarts=1, reason="OOMKilled"), workload="oom")])
    assert "ContainerRestarting" not in _firing(conn, settings, T0 + 5)  # nothing to compare with yet
    _store(conn, T0 + 300, [_pod("api-1", _container(restarts=4, reason="Error")),
                            _pod("oom-1", _container("oom", restarts=2, reason="OOMKilled"), workload="oom")])
    [alert] = _firing(conn, settings, T0 + 305)["ContainerRestarting"]
    assert alert.labels["workload"] == "api"  # the OOM-killed one has its own alert
    assert "restarted 2 times in the last 60 minutes in pod api-1 (4 restarts in all, last terminated with " \
           "reason Error)" in alert.description
    _store(conn, T0 + 600, [_pod("api-1", _container(restarts=4, reason="Error"))])
    assert "ContainerRestarting" in _firing(conn, settings, T0 + 605)  # still within the hour
    _store(conn, T0 + 3900, [_pod("api-1", _container(restarts=4, reason="Error"))])
    assert "ContainerRestarting" not in _firing(conn, settings, T0 + 3905)


def test_restarts_from_oom_kills_do_not_count_as_restarting_even_after_the_fix(db):
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container(restarts=1, reason="OOMKilled"))])
    _store(conn, T0 + 300, [_pod("api-1", _container(restarts=2, reason="OOMKilled"))])
    assert "ContainerRestarting" not in _firing(conn, settings, T0 + 305)
    _store(conn, T0 + 600, [_pod("api-1", _container(restarts=2))])  # limit raised: lastState cleared
    assert "ContainerRestarting" not in _firing(conn, settings, T0 + 605)
    _store(conn, T0 + 900, [_pod("api-1", _container(restarts=3, reason="Error"))])
    [alert] = _firing(conn, settings, T0 + 905)["ContainerRestarting"]
    assert "restarted once in the last 60 minutes" in alert.description


def test_a_replaced_pod_keeps_the_same_alert(db):
    conn, settings = db
    _store(conn, T0, [_pod("api-abc-1", _container(restarts=1, reason="OOMKilled"))],
           {("shop", "api-abc-1", "api"): _usage(oom=1)})
    [before] = _firing(conn, settings, T0 + 5)["ContainerOOMKilled"]
    _store(conn, T0 + 300, [_pod("api-def-9", _container(restarts=1, reason="OOMKilled"))],
           {("shop", "api-def-9", "api"): _usage(oom=1)})
    [after] = _firing(conn, settings, T0 + 305)["ContainerOOMKilled"]
    assert after.fingerprint == before.fingerprint
    assert after.starts_at == before.starts_at == T0 + 5
    assert "pod api-def-9" in after.description


def test_a_run_without_usage_keeps_usage_alerts_as_they_were(db):
    conn, settings = db
    pods = [_pod("api-1", _container(reason="OOMKilled"))]
    _store(conn, T0, pods, {("shop", "api-1", "api"): _usage(throttled=0.5, oom=1)})
    assert set(_firing(conn, settings, T0 + 5)) == {"ContainerOOMKilled", "CPUThrottled"}
    _store(conn, T0 + 300, [_pod("api-1", _container())], status="partial")  # Prometheus was down
    assert set(_firing(conn, settings, T0 + 305)) == {"CPUThrottled"}


def test_a_run_of_some_namespaces_neither_resolves_nor_refires_alerts_elsewhere(db):
    conn, settings = db
    throttled = {("team", "web-1", "web"): _usage(throttled=0.5)}
    web = _pod("web-1", _container("web"), workload="web", namespace="team")
    _store(conn, T0, [_pod("api-1", _container()), web], {("shop", "api-1", "api"): _usage(oom=1), **throttled})
    assert set(_firing(conn, settings, T0 + 5)) == {"ContainerOOMKilled", "CPUThrottled"}

    _store(conn, T0 + 300, [_pod("api-1", _container())], {("shop", "api-1", "api"): _usage()}, namespaces="shop")
    change = update_state(conn, evaluate_rules(conn, settings, T0 + 305), T0 + 305)
    assert [(a.name, a.labels["namespace"]) for a in change.resolved] == [("ContainerOOMKilled", "shop")]
    assert change.started == []
    assert [a.where for a in _firing(conn, settings, T0 + 305)["CPUThrottled"]] == ["team/Deployment/web web"]

    _store(conn, T0 + 600, [_pod("api-1", _container()), web], {("shop", "api-1", "api"): _usage(), **throttled})
    change = update_state(conn, evaluate_rules(conn, settings, T0 + 605), T0 + 605)
    assert (change.started, change.resolved) == ([], [])
    [alert] = _firing(conn, settings, T0 + 605)["CPUThrottled"]
    assert alert.starts_at == T0 + 5  # one alert all along, not a new one


def test_alerts_outside_namespaces_include_resolve_once_it_is_set(tmp_path):
    """Runs over exactly NAMESPACES_INCLUDE are this installation's full runs: what lies outside
    is no longer watched, and its alerts must not fire forever."""
    settings = load_settings(database_path=tmp_path / "db.sqlite", namespaces_include="shop")
    conn = open_store(settings)
    web = _pod("web-1", _container("web"), workload="web", namespace="team")
    _store(conn, T0, [_pod("api-1", _container()), web], {("team", "web-1", "web"): _usage(throttled=0.5)})
    assert "CPUThrottled" in _firing(conn, settings, T0 + 5)
    _store(conn, T0 + 300, [_pod("api-1", _container())], {("shop", "api-1", "api"): _usage()}, namespaces="shop")
    assert "CPUThrottled" not in _firing(conn, settings, T0 + 305)
    conn.close()


def test_more_than_five_failed_runs_in_an_hour_fire_collection_failing(db):
    conn, settings = db
    for minute in range(5):
        at = T0 + 60 * minute
        record_run(conn, RunRecord("schedule", at, at + 1, "failed", error="Kubernetes: 503"))
    assert "CollectionFailing" not in _firing(conn, settings, T0 + 400)
    record_run(conn, RunRecord("schedule", T0 + 360, T0 + 361, "failed", error="Kubernetes: forbidden"))
    [alert] = _firing(conn, settings, T0 + 400)["CollectionFailing"]
    assert alert.severity == "critical"
    assert alert.summary == "prod-eu: 6 collections failed in the last hour"
    assert alert.description.endswith("Latest error: Kubernetes: forbidden")


def test_no_success_for_three_intervals_fires_collection_stale(db):
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container())])
    assert "CollectionStale" not in _firing(conn, settings, T0 + 900)
    record_run(conn, RunRecord("schedule", T0 + 950, T0 + 951, "failed", error="Kubernetes: timeout"))
    [alert] = _firing(conn, settings, T0 + 960)["CollectionStale"]
    assert alert.summary == "prod-eu: no successful collection for 16 minutes"


def test_large_database_fires(tmp_path):
    settings = load_settings(database_path=tmp_path / "db.sqlite", alert_database_max_bytes=4096)
    conn = open_store(settings)
    _store(conn, T0, [_pod("api-1", _container())])
    [alert] = _firing(conn, settings, T0 + 5)["DatabaseLarge"]
    assert "more than ALERT_DATABASE_MAX_BYTES" in alert.description


def test_backup_missing_counts_from_the_last_good_backup_or_the_first_run(db):
    conn, settings = db
    _store(conn, T0, [_pod("api-1", _container())])
    assert "BackupMissing" not in _firing(conn, settings, T0 + 25 * 3600)
    assert "BackupMissing" in _firing(conn, settings, T0 + 27 * 3600)
    with transaction(conn):
        conn.execute("INSERT INTO backups (started_at, finished_at, status) VALUES (?, ?, 'ok')",
                     (T0 + 27 * 3600, T0 + 27 * 3600 + 10))
    assert "BackupMissing" not in _firing(conn, settings, T0 + 28 * 3600)


def test_a_rule_that_cannot_read_its_table_keeps_its_state_and_the_others_still_run(db):
    conn, settings = db
    _store_oom_killed(conn, T0)
    assert "BackupMissing" in _firing(conn, settings, T0 + 27 * 3600)
    with transaction(conn):
        conn.execute("DROP TABLE backups")
    evaluated = evaluate_rules(conn, settings, T0 + 28 * 3600)
    assert evaluated.alerts["BackupMissing"] is None
    assert [a.name for a in evaluated.alerts["ContainerOOMKilled"]] == ["ContainerOOMKilled"]
    assert "BackupMissing" in _firing(conn, settings, T0 + 28 * 3600)  # not resolved for lack of data


def test_told_once_then_once_per_repeat_interval_then_once_resolved(db):
    conn, settings = db
    repeat = settings.alert_repeat_interval_seconds
    _store_oom_killed(conn, T0)
    _firing(conn, settings, T0)
    assert [a.name for a in claim_due(conn, T0, repeat).alerts] == ["ContainerOOMKilled"]
    assert claim_due(conn, T0 + 300, repeat).alerts == []
    assert claim_due(conn, T0 + repeat - 1, repeat).alerts == []
    [again] = claim_due(conn, T0 + repeat, repeat).alerts
    assert again.status == "firing"
    _store(conn, T0 + repeat + 300, [_pod("api-1", _container())])
    _firing(conn, settings, T0 + repeat + 300)
    [resolved] = claim_due(conn, T0 + repeat + 300, repeat).alerts
    assert (resolved.status, resolved.ends_at) == ("resolved", T0 + repeat + 300)
    assert claim_due(conn, T0 + repeat + 600, repeat).alerts == []


def test_an_alert_nobody_was_told_of_resolves_silently(db):
    conn, settings = db
    _store_oom_killed(conn, T0)
    _firing(conn, settings, T0)
    _store(conn, T0 + 300, [_pod("api-1", _container())])
    _firing(conn, settings, T0 + 300)
    assert claim_due(conn, T0 + 300, settings.alert_repeat_interval_seconds).alerts == []
    assert [a.status for a in list_alerts(conn, T0 + 300, 3600)] == ["resolved"]


def test_a_released_claim_is_due_again_on_the_next_run(db):
    conn, settings = db
    repeat = settings.alert_repeat_interval_seconds
    _store_oom_killed(conn, T0)
    _firing(conn, settings, T0)
    first = claim_due(conn, T0, repeat)
    release_claim(conn, first, first.alerts)
    assert [a.name for a in claim_due(conn, T0 + 300, repeat).alerts] == ["ContainerOOMKilled"]


def test_a_firing_alert_that_fires_again_after_resolving_starts_anew(db):
    conn, settings = db
    _store_oom_killed(conn, T0)
    _firing(conn, settings, T0)
    claim_due(conn, T0, settings.alert_repeat_interval_seconds)
    _store(conn, T0 + 300, [_pod("api-1", _container())])
    _firing(conn, settings, T0 + 300)
    _store_oom_killed(conn, T0 + 600)
    [alert] = _firing(conn, settings, T0 + 600)["ContainerOOMKilled"]
    assert alert.starts_at == T0 + 600
    assert [a.status for a in claim_due(conn, T0 + 600, settings.alert_repeat_interval_seconds).alerts] == ["firing"]


def test_fingerprint_depends_on_labels_only():
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1", "b": "2"}) != fingerprint({"a": "1", "b": "3"})
    assert len(fingerprint({})) == 16


def test_an_alert_firing_before_the_cluster_label_existed_carries_over_without_a_new_notification(db):
    """Upgrading adds `cluster` to every alert's labels, so its fingerprint changes: the stored alert takes
    the new one, and nobody is told it resolved and fired again."""
    conn, settings = db
    unlabelled = Alert("CPUThrottled", "warning", {"alertname": "CPUThrottled", "severity": "warning",
                                                   "namespace": "shop", "workload": "api"}, "old words", "", T0)
    update_state(conn, Evaluation({"CPUThrottled": [unlabelled]}), T0)
    assert [a.fingerprint for a in claim_due(conn, T0, 3600).alerts] == [unlabelled.fingerprint]  # told at T0

    labelled = in_cluster(dataclasses.replace(unlabelled, starts_at=T0 + 300), settings.cluster_name)
    change = update_state(conn, Evaluation({"CPUThrottled": [labelled]}), T0 + 300)

    assert (change.started, change.resolved) == ([], [])
    assert claim_due(conn, T0 + 300, 3600).alerts == []  # not due again before the repeat interval
    [stored] = list_alerts(conn, T0 + 300, 0)
    assert stored.fingerprint == labelled.fingerprint != unlabelled.fingerprint
    assert stored.labels["cluster"] == "prod-eu" and stored.starts_at == T0
    assert stored.summary == "prod-eu: old words"
