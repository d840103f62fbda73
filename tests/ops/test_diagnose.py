"""`k8s-monitor diagnose` as an operator meets it: a verdict naming each problem with its fix, and one
archive holding the facts, with parts of the system down and secrets kept out."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.formats import format_bytes
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.diagnose.archive import write_archive
from shared.ops.diagnose.diagnosis import Diagnosis, diagnose
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE
from shared.ops.diagnose.memory import container_memory
from shared.simulator.cluster import SimulatedCluster
from shared.simulator.scenario import SimContainer, SimPod, object_uid
from shared.store.connection import SCHEMA_VERSION
from tests.conftest import FakeClock, make_settings
from tests.support.servers import REPO, free_port

MiB = 1024**2


def collect_now(settings: Settings, clock: FakeClock) -> dict:
    """One collection stamped at the present, as the collect function would have stored it."""
    clock.now = time.time() // 60 * 60
    body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    return body


def run_diagnose(settings: Settings, clock: FakeClock, tmp_path: Path, **kwargs: object) -> Diagnosis:
    cgroup = tmp_path / "cgroup"
    if not cgroup.exists():
        write_cgroup_v2(cgroup, limit=1024 * MiB, peak=300 * MiB, oom_kills=0)
    return diagnose(settings, now=clock.now, timeout_seconds=3, cgroup_root=cgroup, **kwargs)  # type: ignore[arg-type]


def write_cgroup_v2(root: Path, limit: int | None, peak: int, oom_kills: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "memory.max").write_text(f"{limit if limit else 'max'}\n")
    (root / "memory.current").write_text(f"{peak // 2}\n")
    (root / "memory.peak").write_text(f"{peak}\n")
    (root / "memory.events").write_text(f"low 0\nhigh 0\nmax 3\noom {oom_kills}\noom_kill {oom_kills}\n")
    return root


def findings(diagnosis: Diagnosis, section: str) -> dict[str, dict]:
    return {f.subject: dataclasses.asdict(f) for f in diagnosis.sections[section].findings}


def archive_files(archive: Path) -> dict[str, str]:
    with tarfile.open(archive) as tar:
        return {member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                for member in tar.getmembers()}


def deny(cluster: SimulatedCluster, *resources: str) -> None:
    cluster.set_scenario(dataclasses.replace(cluster.scenario, denied=frozenset(resources)))


def test_a_healthy_monitor_gets_an_all_ok_verdict_and_one_archive_with_the_facts(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, pod_namespace="monitoring")
    first = collect_now(settings, clock)
    second = collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)
    archive = write_archive(diagnosis, tmp_path / "out")

    assert diagnosis.problems == []
    assert diagnosis.verdict().splitlines()[0].endswith(": all checks ok")
    assert archive.name == time.strftime("k8s-monitor-diagnose-%Y%m%d_%H%M%S.tar.gz", time.gmtime(clock.now))
    assert archive.stat().st_mode & 0o777 == 0o600
    files = archive_files(archive)
    folder = archive.name.removesuffix(".tar.gz")
    assert sorted(files) == sorted(f"{folder}/{name}" for name in (
        "summary.txt", "settings.json", "health.json", "runs.json", "database.json", "prometheus.json",
        "permissions.json", "memory.json"))
    assert files[f"{folder}/summary.txt"] == diagnosis.verdict() + "\n"
    runs = json.loads(files[f"{folder}/runs.json"])["runs"]
    assert [run["id"] for run in runs] == [second["run_id"], first["run_id"]]
    assert {"status", "error", "pods", "duration_seconds", "kubernetes_seconds", "prometheus_seconds",
            "database_seconds"} <= set(runs[0])
    database = json.loads(files[f"{folder}/database.json"])
    assert database["integrity_check"] == ["ok"]
    assert database["schema_version"] == database["expected_schema_version"] == SCHEMA_VERSION
    assert database["rows"]["runs"] == 2
    assert database["rows"]["samples"] == first["containers"] + second["containers"]
    wal = settings.database_path.with_name(settings.database_path.name + "-wal")
    assert database["size_bytes"] == settings.database_path.stat().st_size  # readers change neither file
    assert database["wal_bytes"] == (wal.stat().st_size if wal.exists() else 0)
    assert database["total_bytes"] == database["size_bytes"] + database["wal_bytes"]
    health = json.loads(files[f"{folder}/health.json"])
    assert health["report"]["status"] == "healthy"
    prometheus = json.loads(files[f"{folder}/prometheus.json"])
    assert {f["subject"]: f["status"] for f in prometheus["findings"]} == {
        "METRIC_CPU_USAGE=container_cpu_usage_seconds_total": OK,
        "METRIC_MEMORY_WORKING_SET=container_memory_working_set_bytes": OK,
        "METRIC_CPU_THROTTLED_PERIODS=container_cpu_cfs_throttled_periods_total": OK,
        "METRIC_CPU_PERIODS=container_cpu_cfs_periods_total": OK,
        "METRIC_OOM_EVENTS=container_oom_events_total": OK,
    }
    permissions = json.loads(files[f"{folder}/permissions.json"])
    assert {f["subject"]: f["status"] for f in permissions["findings"]} == {
        "list pods (all namespaces)": OK,
        "list replicasets.apps (all namespaces)": OK,
        "list jobs.batch (all namespaces)": OK,
        "list horizontalpodautoscalers.autoscaling (all namespaces)": OK,
        "list nodes (all namespaces)": OK,
        "create leases.coordination.k8s.io (namespace monitoring)": OK,
        "get leases.coordination.k8s.io k8s-resource-monitor-collector (namespace monitoring)": OK,
        "update leases.coordination.k8s.io k8s-resource-monitor-collector (namespace monitoring)": OK,
    }


def test_denied_resources_are_named_with_the_rule_to_add(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster)
    deny(cluster, "pods", "replicasets")
    failed = collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)

    assert failed["status"] == "failed"
    assert set(diagnosis.problems) == {"health", "runs", "permissions"}
    permissions = findings(diagnosis, "permissions")
    assert permissions["list pods (all namespaces)"]["status"] == PROBLEM
    assert permissions["list pods (all namespaces)"]["fix"] == (
        'add to ClusterRole k8s-resource-monitor-reader (common/base/rbac.yaml): '
        '{apiGroups: [""], resources: [pods], verbs: [list]}')
    assert permissions["list replicasets.apps (all namespaces)"]["fix"] == (
        "add to ClusterRole k8s-resource-monitor-reader (common/base/rbac.yaml): "
        "{apiGroups: [apps], resources: [replicasets], verbs: [list]}")
    assert permissions["list nodes (all namespaces)"]["status"] == OK
    assert diagnosis.sections["permissions"].summary.startswith("3 of 5 API calls allowed")
    assert "leases" in permissions and "not running in a pod" in permissions["leases"]["detail"]
    runs = diagnosis.sections["runs"]
    assert runs.summary.startswith(f"latest run {failed['run_id']} failed")
    (run_error,) = [f.detail for f in runs.findings]
    assert run_error.startswith("Kubernetes: missing RBAC permission: verb 'list' on resource 'pods' in API group \"\" "
                                "(pods is forbidden: User \"system:serviceaccount:monitoring:k8s-resource-monitor\" "
                                "cannot list resource \"pods\"")
    verdict = diagnosis.verdict()
    assert "PROBLEM list pods (all namespaces): denied (no RBAC rule allows it)" in verdict
    assert "fix: add to ClusterRole k8s-resource-monitor-reader (common/base/rbac.yaml): {apiGroups: [\"\"], " \
           "resources: [pods], verbs: [list]}" in verdict


def test_the_lease_is_checked_in_the_pod_namespace_with_its_name(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, pod_namespace="monitoring", lease_name="my-lease")
    deny(cluster, "leases")
    failed = collect_now(settings, clock)
    before = len(cluster.kube.requests)

    permissions = findings(run_diagnose(settings, clock, tmp_path), "permissions")

    asked = cluster.kube.requests[before:]
    assert failed["error"].startswith(
        "Kubernetes: cannot take lease monitoring/my-lease: missing RBAC permission: verb 'get' on resource 'leases' "
        "in API group coordination.k8s.io (")

    assert permissions["get leases.coordination.k8s.io my-lease (namespace monitoring)"]["fix"] == (
        "add to Role k8s-resource-monitor-lease in namespace monitoring (common/base/rbac.yaml): "
        "{apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [my-lease], verbs: [get]}")
    assert permissions["create leases.coordination.k8s.io (namespace monitoring)"]["status"] == PROBLEM
    assert permissions["list pods (all namespaces)"]["status"] == OK
    reviews = [r for r in asked if r.resource == "selfsubjectaccessreviews"]
    assert len(reviews) == 8 + 1 and all(r.verb == "create" for r in reviews)  # and one by the health check
    assert not [r for r in asked if r.resource == "leases"]  # asked about, never touched


def test_namespaces_include_checks_each_namespace_instead_of_the_cluster(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, namespaces_include=("shop", "data"))

    subjects = set(findings(run_diagnose(settings, clock, tmp_path), "permissions"))

    assert {"list pods (namespace shop)", "list jobs.batch (namespace data)", "list nodes (all namespaces)"} <= subjects
    assert "list pods (all namespaces)" not in subjects


def test_rejected_credentials_are_named_as_such_not_as_missing_rules(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    kubeconfig = json.loads(cluster.write_kubeconfig(tmp_path / "good-kubeconfig").read_text())
    kubeconfig["users"][0]["user"]["token"] = "an-expired-token"
    (tmp_path / "expired").write_text(json.dumps(kubeconfig))
    settings = make_settings(tmp_path, cluster, kubeconfig=tmp_path / "expired")
    failed = collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)

    assert failed["error"] == ("Kubernetes: credentials rejected (401 Unauthorized): check the token or kubeconfig "
                               "(Unauthorized)")
    permissions = diagnosis.sections["permissions"]
    assert permissions.status == UNAVAILABLE
    (rejected,) = permissions.findings
    assert rejected.detail.startswith("credentials rejected (401 Unauthorized)")
    assert rejected.fix is not None and rejected.fix.startswith("renew the credentials")


def test_an_unreachable_api_server_is_named_with_its_address(tmp_path: Path, clock: FakeClock) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                  "clusters": [{"name": "c", "cluster": {"server": down}}], "users": [{"name": "u", "user": {}}],
                  "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    (tmp_path / "kubeconfig").write_text(json.dumps(kubeconfig))
    settings = make_settings(tmp_path, kubeconfig=tmp_path / "kubeconfig", kube_max_retries=0)
    failed = collect_now(settings, clock)

    (unreachable,) = run_diagnose(settings, clock, tmp_path).sections["permissions"].findings

    assert failed["error"] == (f"Kubernetes: list pods failed after 1 attempts: Kubernetes API at {down} "
                               f"unreachable: [Errno 111] Connection refused")
    assert unreachable.detail == (f"create selfsubjectaccessreviews failed after 1 attempts: Kubernetes API at {down} "
                                  f"unreachable: [Errno 111] Connection refused")
    assert unreachable.fix == "check that the API server answers from here (its address, network, NetworkPolicies)"


def test_where_access_reviews_are_refused_reads_are_tried_and_writes_are_not(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, pod_namespace="monitoring")
    deny(cluster, "selfsubjectaccessreviews", "nodes")

    diagnosis = run_diagnose(settings, clock, tmp_path)
    permissions = findings(diagnosis, "permissions")

    assert permissions["create selfsubjectaccessreviews"]["status"] == PROBLEM
    refused = permissions["create selfsubjectaccessreviews"]
    assert "resources: [selfsubjectaccessreviews], verbs: [create]" in refused["fix"]
    assert permissions["list pods (all namespaces)"] == {
        "subject": "list pods (all namespaces)", "status": OK, "detail": "allowed (tried)", "fix": None}
    assert permissions["list nodes (all namespaces)"]["detail"].startswith(
        "denied: missing RBAC permission: verb 'list' on resource 'nodes' in API group \"\"")
    assert permissions["get leases.coordination.k8s.io k8s-resource-monitor-collector (namespace monitoring)"][
        "status"] == OK  # 404: may look, nothing there yet
    assert permissions["create leases.coordination.k8s.io (namespace monitoring)"]["status"] == UNAVAILABLE
    assert not [r for r in cluster.kube.requests if r.verb in ("create", "update") and r.resource == "leases"]


def test_prometheus_down_is_reported_and_the_rest_still_checked(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, cluster, prometheus_url=down)
    partial = collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)

    assert partial["status"] == "partial"
    assert partial["error"] == f"Prometheus: Prometheus at {down} unreachable: ConnectionError"
    prometheus = diagnosis.sections["prometheus"]
    assert prometheus.status == UNAVAILABLE
    assert prometheus.findings[0].detail == f"Prometheus at {down} unreachable: ConnectionError"
    assert "check PROMETHEUS_URL" in (prometheus.findings[0].fix or "")
    assert diagnosis.sections["runs"].status == PROBLEM
    assert diagnosis.sections["permissions"].status == diagnosis.sections["database"].status == OK


def test_a_prometheus_that_never_answers_is_cut_off_by_the_timeout(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = make_settings(tmp_path, cluster, prometheus_url=url, health_check_timeout_seconds=0.5)
        diagnosis = diagnose(settings, now=clock.now, timeout_seconds=1, cgroup_root=tmp_path / "none")

        partial = collect_now(make_settings(tmp_path / "collect", cluster, prometheus_url=url,
                                            prometheus_timeout_seconds=0.5), clock)

    detail = diagnosis.sections["prometheus"].findings[0].detail
    assert detail == f"Prometheus at {url} did not answer within 1s (--timeout)"
    assert diagnosis.sections["permissions"].status == OK
    assert partial["error"] == f"Prometheus: Prometheus at {url} did not answer within 0.5s"


def test_a_metric_the_collector_needs_and_prometheus_lacks_is_named(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, metric_cpu_usage="container_cpu_seconds_total")

    diagnosis = run_diagnose(settings, clock, tmp_path)
    prometheus = findings(diagnosis, "prometheus")

    assert prometheus["METRIC_CPU_USAGE=container_cpu_seconds_total"] == {
        "subject": "METRIC_CPU_USAGE=container_cpu_seconds_total", "status": PROBLEM,
        "detail": "no series in the last hour",
        "fix": "check that the kubelets' cAdvisor metrics are scraped, or set METRIC_CPU_USAGE to the name your "
               "setup uses"}
    assert prometheus["METRIC_MEMORY_WORKING_SET=container_memory_working_set_bytes"]["status"] == OK
    assert diagnosis.sections["prometheus"].status == PROBLEM


def test_an_optional_metric_prometheus_lacks_is_noted_not_a_problem(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster, metric_oom_events="container_oom_kills_total")

    diagnosis = run_diagnose(settings, clock, tmp_path)

    assert findings(diagnosis, "prometheus")["METRIC_OOM_EVENTS=container_oom_kills_total"] == {
        "subject": "METRIC_OOM_EVENTS=container_oom_kills_total", "status": OK,
        "detail": "absent: optional, its figure stays empty (older kubelets and some relabelling setups drop it)",
        "fix": None}
    section = diagnosis.sections["prometheus"]
    assert section.status == OK
    assert section.summary.endswith("required metrics present, 1 optional absent")


def test_with_nothing_there_every_part_says_why_and_the_archive_is_still_written(
        tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(tmp_path)  # no cluster, no Prometheus, no database

    diagnosis = run_diagnose(settings, clock, tmp_path)
    archive = write_archive(diagnosis, tmp_path)

    assert archive.exists()
    sections = diagnosis.sections
    assert (sections["runs"].status, sections["prometheus"].status, sections["permissions"].status) == (
        UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    database = findings(diagnosis, "database")["open"]
    assert database["detail"] == (f"database {settings.database_path} does not exist yet (DATABASE_PATH); "
                                  f"run a collection first")
    assert database["fix"].startswith("run a collection")
    kubernetes = findings(diagnosis, "permissions")["Kubernetes API"]
    assert kubernetes["detail"].startswith(
        f"cannot load Kubernetes credentials (KUBECONFIG={settings.kubeconfig}, KUBE_CONTEXT=current): ")
    assert kubernetes["fix"] == "set KUBECONFIG / KUBE_CONTEXT, or run in a pod with a service account"
    assert sections["health"].summary.startswith("unhealthy: database unhealthy")


def test_a_corrupt_database_is_named_damaged_with_the_restore_to_do(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(tmp_path)
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"this is not an SQLite database\n" * 200)

    diagnosis = run_diagnose(settings, clock, tmp_path)

    (problem,) = diagnosis.sections["database"].findings
    assert problem.detail == f"database {settings.database_path} cannot be used: file is not a database"
    assert problem.fix is not None and "`k8s-monitor restore FILE`" in problem.fix
    size = format_bytes(settings.database_path.stat().st_size)
    assert diagnosis.sections["database"].summary == f"{settings.database_path}: {size} + WAL 0, unreadable"


@pytest.mark.parametrize("folder", ["does not exist", "newer than", "expected schema version"])
def test_the_fix_for_a_corrupt_database_does_not_depend_on_the_words_of_its_path(
        tmp_path: Path, clock: FakeClock, folder: str) -> None:
    settings = make_settings(tmp_path, database_path=tmp_path / folder / "k8s_metrics.db")
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"this is not an SQLite database\n" * 200)

    (problem,) = run_diagnose(settings, clock, tmp_path).sections["database"].findings

    assert problem.fix is not None and problem.fix.startswith("restore the newest good backup")


@pytest.mark.parametrize(("version_step", "fix"), [
    (+1, "roll the image forward again, or restore the copy or backup taken before the upgrade"),
    (-1, "run one collection: the collect function migrates the schema"),
], ids=["newer", "older"])
def test_a_database_of_another_schema_version_gets_the_fix_for_its_direction(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock, version_step: int, fix: str) -> None:
    settings = make_settings(tmp_path, cluster)
    collect_now(settings, clock)
    with sqlite3.connect(settings.database_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + version_step}")

    database = run_diagnose(settings, clock, tmp_path).sections["database"]

    (opened,) = database.findings
    assert (database.status, opened.subject) == (PROBLEM, "open")
    assert f"schema version {SCHEMA_VERSION + version_step}" in opened.detail
    assert opened.fix is not None and opened.fix.startswith(fix)


def test_a_damaged_page_fails_integrity_check(tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster)
    collect_now(settings, clock)
    with sqlite3.connect(settings.database_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'container_spans_pod'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(settings.database_path, "r+b") as file:  # scribble over an index page, as a bad disk would
        file.seek((root - 1) * page_size + 8)
        file.write(b"\x00\x07" * 16)

    database = run_diagnose(settings, clock, tmp_path).sections["database"]

    assert database.status == PROBLEM
    assert database.data["integrity_check"] != ["ok"]
    assert [f.subject for f in database.findings] == ["integrity_check"]


def test_secrets_never_reach_the_verdict_or_the_archive(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    password_file = tmp_path / "smtp-password"
    password_file.write_text("s3cret-smtp-password\n")
    prometheus_with_login = cluster.prometheus_url.replace("http://", "http://monitor:pr0m-login-pass@")
    settings = make_settings(
        tmp_path, cluster, prometheus_url=prometheus_with_login, smtp_password_file=password_file,
        slack_webhook_url="https://hooks.slack.com/services/T0001/B0001/slackpathsecret42",
        prometheus_bearer_token="bearer-token-value-0123456789", alert_webhook_token="alert-token-abcdef",
        alert_route_critical=(), alert_route_warning=())  # the collection tells nobody
    collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)
    files = archive_files(write_archive(diagnosis, tmp_path))
    text = "\n".join([diagnosis.verdict(), *files.values()])

    for secret in ("s3cret-smtp-password", "pr0m-login-pass", "slackpathsecret42", "T0001/B0001",
                   "bearer-token-value-0123456789", "alert-token-abcdef"):
        assert secret not in text
    settings_file = json.loads(next(body for name, body in files.items() if name.endswith("settings.json")))
    shown = settings_file["settings"]
    assert shown["SLACK_WEBHOOK_URL"] == shown["SMTP_PASSWORD"] == shown["PROMETHEUS_BEARER_TOKEN"] == "[REDACTED]"
    assert shown["SMTP_PASSWORD_FILE"] == str(password_file)
    assert shown["PROMETHEUS_URL"].startswith("http://monitor:[REDACTED]@127.0.0.1:")
    assert shown["WEBHOOK_URL"] is None
    assert settings_file["version"] and "python" in settings_file["environment"]


def knative_collect_pod(cluster: SimulatedCluster, working_set_bytes: int, reason: str | None) -> SimPod:
    """The pod of revision collect-00002 as Knative names it, with a 512 MiB memory limit."""
    replicaset = "collect-00002-deployment-7c9d5b"
    container = SimContainer("collect", "registry.example.com/k8s-resource-monitor:0.2.0", 200, 1000,
                             256 * MiB, 512 * MiB, cpu_usage_millicores=150, memory_working_set_bytes=working_set_bytes,
                             restart_count=2 if reason else 0, last_termination_reason=reason)
    name = f"{replicaset}-x2k9q"
    return SimPod("monitoring", name, object_uid(7, "Pod", "monitoring", name), cluster.scenario.nodes[0].name,
                  "ReplicaSet", replicaset, "Deployment", "collect-00002-deployment", "Running", "Burstable",
                  {"serving.knative.dev/service": "collect"}, (container,))


def with_pod(cluster: SimulatedCluster, pod: SimPod) -> None:
    scenario = cluster.scenario
    replicasets = {**scenario.replicasets, ("monitoring", pod.owner_name): ("Deployment", pod.workload_name)}
    cluster.set_scenario(dataclasses.replace(scenario, pods=(*scenario.pods, pod), replicasets=replicasets))


def test_an_oom_killed_collect_container_is_shown_with_its_limit_and_what_to_lower(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    with_pod(cluster, knative_collect_pod(cluster, 490 * MiB, "OOMKilled"))
    settings = make_settings(tmp_path, cluster, kube_page_size=250)
    collect_now(settings, clock)

    memory = run_diagnose(settings, clock, tmp_path).sections["memory"]

    assert memory.status == PROBLEM
    (own,) = [f for f in memory.findings if f.subject.startswith("pod monitoring/collect-00002-deployment")]
    assert own.subject == "pod monitoring/collect-00002-deployment-7c9d5b-x2k9q container collect"
    assert own.detail.endswith("limit 512Mi, 2 restart(s), last terminated OOMKilled")
    assert own.fix is not None and "a smaller KUBE_PAGE_SIZE (now 250 pods per page)" in own.fix
    assert "resources.limits.memory" in own.fix
    assert memory.summary.endswith("1 container(s) of the monitor in namespace monitoring in the last collection; "
                                   "KUBE_PAGE_SIZE=250")


def test_the_serve_container_of_the_plain_install_is_the_monitor_too(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    """kubernetes/ runs every function in the Deployment k8s-resource-monitor (container `serve`)."""
    replicaset = "k8s-resource-monitor-6d8f7c9b5"
    container = SimContainer("serve", "registry.example.com/k8s-resource-monitor:0.2.0", 250, 1000,
                             384 * MiB, 1536 * MiB, cpu_usage_millicores=150, memory_working_set_bytes=1450 * MiB)
    name = f"{replicaset}-q8w2z"
    node = cluster.scenario.nodes[0].name
    with_pod(cluster, SimPod("monitoring", name, object_uid(7, "Pod", "monitoring", name), node,
                             "ReplicaSet", replicaset, "Deployment", "k8s-resource-monitor", "Running", "Burstable",
                             {"app.kubernetes.io/name": "k8s-resource-monitor"}, (container,)))
    settings = make_settings(tmp_path, cluster)
    collect_now(settings, clock)

    memory = run_diagnose(settings, clock, tmp_path).sections["memory"]

    (own,) = memory.findings[-1:]
    assert own.subject == f"pod monitoring/{name} container serve" and own.status == PROBLEM
    assert own.detail.startswith("peak working set ") and ", limit 1.5Gi, 0 restart(s)" in own.detail
    assert own.fix is not None and "kubernetes/base/deployment.yaml" in own.fix


def test_other_workloads_of_the_namespace_are_not_taken_for_the_monitor(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, cluster)
    collect_now(settings, clock)

    memory = run_diagnose(settings, clock, tmp_path).sections["memory"]

    assert memory.data["own_containers"] == []  # the scenario's monitoring namespace runs node-exporter and others


def test_container_memory_reads_cgroup_v2_and_v1(tmp_path: Path) -> None:
    v2 = write_cgroup_v2(tmp_path / "v2", limit=512 * MiB, peak=500 * MiB, oom_kills=3)
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    (v1 / "memory.usage_in_bytes").write_text(f"{100 * MiB}\n")
    (v1 / "memory.max_usage_in_bytes").write_text(f"{200 * MiB}\n")
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")

    assert container_memory(v2) == {"limit_bytes": 512 * MiB, "current_bytes": 250 * MiB, "peak_bytes": 500 * MiB,
                                    "oom_kills": 3}
    assert container_memory(tmp_path / "v1") == {"limit_bytes": None, "current_bytes": 100 * MiB,
                                                  "peak_bytes": 200 * MiB, "oom_kills": 1}
    assert container_memory(tmp_path / "nothing") == {}


def test_this_container_near_its_limit_is_a_problem(tmp_path: Path, clock: FakeClock) -> None:
    write_cgroup_v2(tmp_path / "cgroup", limit=512 * MiB, peak=500 * MiB, oom_kills=1)

    memory = run_diagnose(make_settings(tmp_path), clock, tmp_path).sections["memory"]

    (here,) = [f for f in memory.findings if f.subject == "this container (where diagnose runs)"]
    assert (here.status, here.detail) == (PROBLEM, "peak 500Mi, limit 512Mi, 1 OOM kill(s)")


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_PATH": str(tmp_path / "data" / "k8s_metrics.db"),
           "KUBECONFIG": str(tmp_path / "missing-kubeconfig"), "PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
           "NAMESPACES_INCLUDE": "", "POD_NAMESPACE": "", "LOG_FORMAT": "text"}


def test_the_command_prints_the_verdict_and_writes_the_archive_here_or_in_output(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    here = tmp_path / "here"
    here.mkdir()
    in_cwd = subprocess.run([sys.executable, "-m", "shared", "diagnose", "--timeout", "2"], cwd=here, env=cli_env,
                            capture_output=True, text=True, timeout=60)
    to_dir = subprocess.run([sys.executable, "-m", "shared", "diagnose", "--timeout", "2", "--output",
                             str(tmp_path / "out")], cwd=here, env=cli_env, capture_output=True, text=True, timeout=60)

    assert (in_cwd.returncode, to_dir.returncode) == (1, 1), in_cwd.stderr
    lines = in_cwd.stdout.splitlines()
    assert "checks need attention" in lines[0]
    assert any(line.startswith("  database     problem      no database at ") for line in lines)
    assert lines[-1].startswith("archive: k8s-monitor-diagnose-")
    assert [p.name for p in here.iterdir()] == [lines[-1].removeprefix("archive: ")]
    (archive,) = (tmp_path / "out").iterdir()
    assert archive.name.startswith("k8s-monitor-diagnose-") and archive.name.endswith(".tar.gz")
    assert to_dir.stdout.splitlines()[-1] == f"archive: {archive}"
    assert in_cwd.stderr == ""


def test_the_readme_quotes_the_fixes_diagnose_prints(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    """The Troubleshooting section shows diagnose's lines: they must be what it prints."""
    readme = (REPO / "README.md").read_text()
    troubleshooting = readme[readme.index("## Troubleshooting"):]
    with_pod(cluster, knative_collect_pod(cluster, 490 * MiB, "OOMKilled"))
    settings = make_settings(tmp_path, cluster, metric_oom_events="container_oom_events_total")
    collect_now(settings, clock)
    deny(cluster, "pods")
    healthy_but_denied = run_diagnose(settings, clock, tmp_path).verdict()
    corrupt = make_settings(tmp_path / "corrupt", cluster)
    corrupt.database_path.parent.mkdir(parents=True)
    corrupt.database_path.write_bytes(b"this is not an SQLite database\n" * 200)
    damaged = run_diagnose(corrupt, clock, tmp_path).verdict()

    quoted = [line for line in troubleshooting.splitlines() if line.startswith("               ")]
    assert len(quoted) >= 8
    printed = healthy_but_denied + "\n" + damaged
    for line in quoted:
        if "fix:" in line and not line.endswith("(...)"):
            assert line.replace("/data/k8s_metrics.db", str(corrupt.database_path)) in printed, line
    assert "               PROBLEM list pods (all namespaces): denied (no RBAC rule allows it)" in quoted


def test_the_runs_section_shows_what_runs_asked_of_prometheus_and_their_warnings(
        tmp_path: Path, cluster: SimulatedCluster, clock: FakeClock) -> None:
    cluster.prometheus.set_scenario(cluster.scenario, copies=({"job": "kubelet"}, {"job": "cadvisor"}))
    settings = make_settings(tmp_path, cluster)
    collected = collect_now(settings, clock)

    diagnosis = run_diagnose(settings, clock, tmp_path)
    runs = diagnosis.sections["runs"]

    assert (f"; Prometheus: 7 queries, {collected['prometheus_series_returned']} series, "
            f"{format_bytes(collected['prometheus_response_bytes'])}, "
            f"{collected['prometheus_samples_processed']} samples") in runs.summary
    (warning,) = [f for f in runs.findings if f.subject == f"run {collected['run_id']} warns"]
    assert warning.status == PROBLEM and "that differ in job" in warning.detail
    assert f"PROBLEM run {collected['run_id']} warns: " in diagnosis.verdict()
    (stored,) = runs.data["runs"]
    assert (stored["cluster"], stored["prometheus_queries"]) == ("simulated", 7)
    assert stored["warnings"] == collected["warnings"][0]
