"""knative/overlays/postgres/ and kubernetes/overlays/postgres/: the installs on a PostgreSQL server.

What an operator checks before applying them: no data volume, no pod affinity and so no Knative
volume feature flags; every pod reads the database URL and password from the mounted Secret; the
Services that share nothing but the database scale out, collect still runs alone; the backups land
on a volume that outlives the pod. The generic checks (builds, strict schemas, references, labels)
run on every kustomization in test_knative.py, these overlays included.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.cli import build_parser
from shared.core.database_url import PostgresTarget
from shared.core.settings import load_settings
from tests.deploy.test_knative import CRD_SCHEMAS, reference_problems
from tests.support.crd_schema import feature_flags_used
from tests.support.kustomize import build, kustomization_dirs, object_id, relative
from tests.support.postgres import postgres_server
from tests.support.readme import readme_section
from tests.support.servers import BIN

REPO = Path(__file__).resolve().parents[2]
KNATIVE_PG = REPO / "knative" / "overlays" / "postgres"
KUBERNETES_PG = REPO / "kubernetes" / "overlays" / "postgres"
OVERLAYS = {"knative": (REPO / "knative", KNATIVE_PG), "kubernetes": (REPO / "kubernetes", KUBERNETES_PG)}
SECRET = "k8s-resource-monitor-database"
DATA_CLAIM, BACKUP_CLAIM = "k8s-resource-monitor-data", "k8s-resource-monitor-backup"
KSVC = ("serving.knative.dev/v1", "Service")
SECRET_DIR = "/etc/k8s-resource-monitor/database"


def _pods(objects: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload: Knative Services, Deployments, CronJobs."""
    pods = []
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec and "containers" in spec["template"]["spec"]:
            pods.append((f"{obj['kind']}/{obj['metadata']['name']}", spec["template"]["spec"]))
    return pods


def _one(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _config(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return _one(objects, "ConfigMap", "k8s-resource-monitor-config")["data"]


def test_both_overlays_are_found_and_built_by_the_manifest_tests() -> None:
    found = {relative(d) for d in kustomization_dirs()}
    assert {"knative/overlays/postgres/", "kubernetes/overlays/postgres/", "common/postgres/"} <= found


@pytest.mark.parametrize("install", OVERLAYS)
def test_no_data_volume_and_no_pod_affinity(install: str) -> None:
    objects = build(OVERLAYS[install][1])
    claims = [o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert claims == [BACKUP_CLAIM], "the database is on the server; only the backups need a volume"
    for where, pod in _pods(objects):
        assert "affinity" not in pod, f"{where} is still pinned to the data volume's node"
        mounted = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes") or ()
                   if "persistentVolumeClaim" in v}
        assert DATA_CLAIM not in mounted, where
    assert "DATABASE_PATH" not in _config(objects), "DATABASE_URL names the store"


def test_readme_enables_exactly_the_one_knative_feature_flag_the_services_still_use() -> None:
    """No claim, no affinity, no fsGroup: of the five flags SQLite needs, only the downward API's stays
    (collect's Lease holder and namespace)."""
    services = [o for o in build(KNATIVE_PG) if (o["apiVersion"], o["kind"]) == KSVC]
    assert {s["metadata"]["name"] for s in services} == {"collect", "health", "report", "alert-notify"}
    used: set[str] = set()
    for ksvc in services:
        assert not any("persistentVolumeClaim" in v for v in ksvc["spec"]["template"]["spec"]["volumes"])
        used |= feature_flags_used(ksvc, CRD_SCHEMAS[KSVC])
    assert used == {"kubernetes.podspec-fieldref"}
    section = readme_section("### Installing with PostgreSQL")
    (patch,) = re.findall(r"kubectl patch configmap/config-features -n knative-serving --type merge -p '([^']+)'",
                          section)
    assert set(json.loads(patch)["data"]) == used
    assert "kubectl apply -k knative/overlays/postgres/" in section


@pytest.mark.parametrize("install", OVERLAYS)
def test_every_pod_reads_the_database_url_and_password_from_the_mounted_secret(install: str) -> None:
    objects = build(OVERLAYS[install][1])
    secret = _one(objects, "Secret", SECRET)
    assert set(secret["data"]) == {"url", "password", "ca.crt"}
    pods = _pods(objects)
    assert pods
    for where, pod in pods:
        (container,) = pod["containers"]
        env = {item["name"]: item.get("value") for item in container.get("env") or ()}
        assert env.get("DATABASE_URL_FILE") == f"{SECRET_DIR}/url", where
        assert env.get("DATABASE_PASSWORD_FILE") == f"{SECRET_DIR}/password", where
        assert not {"DATABASE_URL", "DATABASE_PASSWORD"} & set(env), f"{where}: the password stays out of env"
        volumes = {v["name"]: v for v in pod["volumes"]}
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == SECRET_DIR]
        assert mount.get("readOnly") is True, where
        assert volumes[mount["name"]]["secret"]["secretName"] == SECRET, where


def test_the_placeholder_secret_parses_as_a_postgresql_url_verifying_the_server() -> None:
    """What the operator edits is valid as it stands: they replace host, role and password, not syntax."""
    folder = REPO / "common" / "postgres"
    settings = load_settings(database_url_file=folder / "database-url", database_password_file=folder /
                             "database-password")
    target = settings.database
    assert isinstance(target, PostgresTarget)
    assert target.parameters["sslmode"] == "verify-full"
    assert target.parameters["sslrootcert"] == f"{SECRET_DIR}/ca.crt", "the CA comes with the mounted Secret"
    assert "REPLACE" in (folder / "database-password").read_text() and "REPLACE" in \
        (folder / "database-ca.crt").read_text(), "placeholders nobody could mistake for real values"


def test_collect_runs_alone_and_the_request_driven_services_scale_out() -> None:
    objects = build(KNATIVE_PG)
    scale = {o["metadata"]["name"]: (o["spec"]["template"]["metadata"]["annotations"],
                                     o["spec"]["template"]["spec"]["containerConcurrency"])
             for o in objects if (o["apiVersion"], o["kind"]) == KSVC}
    annotations, concurrency = scale["collect"]
    assert annotations["autoscaling.knative.dev/max-scale"] == "1" and concurrency == 1
    for name in ("report", "alert-notify"):
        annotations, _ = scale[name]
        assert int(annotations["autoscaling.knative.dev/max-scale"]) > 1, name
        assert annotations["autoscaling.knative.dev/min-scale"] == "0", name
    annotations, _ = scale["health"]
    assert annotations["autoscaling.knative.dev/max-scale"] == "1", "each health pod exports the same sums"


def test_knative_backups_run_as_a_cron_job_on_the_backup_volume() -> None:
    objects = build(KNATIVE_PG)
    base = build(REPO / "knative")
    assert not [o for o in objects if o["kind"] == "PingSource" and o["spec"]["sink"]["ref"]["name"] == "backup"]
    cronjob = _one(objects, "CronJob", "backup")
    (ping,) = [o for o in base if o["kind"] == "PingSource" and o["spec"]["sink"]["ref"]["name"] == "backup"]
    assert cronjob["spec"]["schedule"] == ping["spec"]["schedule"] and cronjob["spec"]["timeZone"] == "Etc/UTC"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    argv = [*container["command"][1:], *container["args"]]
    assert container["command"][0] == "k8s-monitor" and build_parser(argv).parse_args(argv).command == "backup"
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] in claims]
    assert claims[mount["name"]] == BACKUP_CLAIM and mount["mountPath"] == _config(objects)["BACKUP_DIR"]
    images = {c["image"] for _, p in _pods(objects) for c in p["containers"]}
    assert images == {c["image"] for _, p in _pods(base) for c in p["containers"]}, "one image, set in both places"
    mounters = [where for where, p in _pods(objects) for v in p.get("volumes") or ()
                if "persistentVolumeClaim" in v]
    assert mounters == ["CronJob/backup"], "the ReadWriteOnce volume has one user"


def test_plain_install_keeps_one_serve_pod_with_its_backup_volume() -> None:
    objects = build(KUBERNETES_PG)
    deployment = _one(objects, "Deployment", "k8s-resource-monitor")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    assert list(claims.values()) == [BACKUP_CLAIM]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] in claims]
    assert mount["mountPath"] == _config(objects)["BACKUP_DIR"]


@pytest.mark.parametrize("install", OVERLAYS)
def test_overlay_changes_only_what_the_database_needs(install: str) -> None:
    root, overlay = OVERLAYS[install]
    before = {object_id(o): o for o in build(root)}
    after = {object_id(o): o for o in build(overlay)}
    removed = {f"{k[1]}/{k[3]}" for k in set(before) - set(after)}
    added = {f"{k[1]}/{k[3]}" for k in set(after) - set(before)}
    changed = {f"{k[1]}/{k[3]}" for k in set(before) & set(after) if before[k] != after[k]}
    if install == "knative":
        assert removed == {f"PersistentVolumeClaim/{DATA_CLAIM}", "Service/backup", "PingSource/backup-schedule"}
        assert added == {f"Secret/{SECRET}", "CronJob/backup"}
        assert changed == {"ConfigMap/k8s-resource-monitor-config", "Service/collect", "Service/health",
                           "Service/report", "Service/alert-notify"}
    else:
        assert removed == {f"PersistentVolumeClaim/{DATA_CLAIM}"} and added == {f"Secret/{SECRET}"}
        assert changed == {"ConfigMap/k8s-resource-monitor-config", "Deployment/k8s-resource-monitor"}


def test_reference_check_sees_a_missing_database_secret() -> None:
    objects = json.loads(json.dumps(build(KNATIVE_PG)))
    objects = [o for o in objects if o["kind"] != "Secret"]
    problems = reference_problems(objects)
    assert problems and all(re.search(rf"mounts Secret {SECRET}, which does not exist", p) for p in problems)
    assert {p.split(":")[0] for p in problems} == {"Service/collect", "Service/health", "Service/report",
                                                   "Service/alert-notify", "CronJob/backup"}


def test_backup_cronjob_container_dumps_a_real_database_into_its_volume(tmp_path: Path) -> None:
    """The CronJob's command, environment and mounts as the kubelet would give them (each mount a
    directory, the Secret's keys as files), against a real PostgreSQL: a verified archive lands in
    the backup volume, and the password was read from its file."""
    objects = build(KNATIVE_PG)
    pod = _one(objects, "CronJob", "backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = _one(objects, "Secret", SECRET)
    mounts = {m["mountPath"]: tmp_path / m["name"] for m in container["volumeMounts"]}
    for mount in container["volumeMounts"]:
        (tmp_path / mount["name"]).mkdir()

    def mapped(value: str) -> str:
        for inside, outside in mounts.items():
            if value == inside or value.startswith(inside + "/"):
                return str(outside) + value[len(inside):]
        return value

    with postgres_server() as server:
        database = server.create_database()
        server.psql("CREATE TABLE runs (id int); INSERT INTO runs VALUES (1), (2)", database)
        secret_dir = next(tmp_path / m["name"] for m in container["volumeMounts"] if "secret" in volumes[m["name"]])
        for key, encoded in secret["data"].items():
            value = base64.b64decode(encoded).decode()
            if key == "url":  # the operator's edit: this server instead of the placeholder host
                value = server.url(database) + "?sslmode=disable"
            (secret_dir / key).write_text(value)
        env = {key: mapped(value) for key, value in _config(objects).items()}
        env |= {item["name"]: mapped(item["value"]) for item in container["env"]}
        env |= {"PATH": f"{REPO / 'scripts'}:{BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
        done = subprocess.run([*container["command"], *container["args"]], env=env, capture_output=True, text=True,
                              timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    backup_dir = Path(mapped(_config(objects)["BACKUP_DIR"]))
    (archive,) = backup_dir.glob("k8s_metrics_*.pgdump")
    assert (backup_dir / (archive.name + ".sha256")).is_file()
    assert done.stdout.startswith(f"backup {archive}: ")
    assert base64.b64decode(secret["data"]["password"]).decode().strip() not in done.stdout + done.stderr
