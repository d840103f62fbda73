"""The Dockerfile, checked without a Docker engine: its layers, its user, and its entry points really run.

There is no Docker here, so the image is emulated (tests/image.py): the files it COPYs are staged in
a directory standing for its root, and each container of the installs as `kubectl kustomize` builds
them (knative/ and kubernetes/) runs its command there, with only the image's ENV, the container's
env and ConfigMap, and its volumes mapped to temporary directories. Each function, and `k8s-monitor
serve` of the plain install, then answers over HTTP.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.store.connection import connect
from tests.support.image import (
    INSTRUCTIONS,
    REPO,
    excluded_from_context,
    image_cmd,
    image_copies,
    image_env,
    image_workdir,
    instructions,
    running_container,
    stage_image,
)
from tests.support.kustomize import build

KNATIVE = build(REPO / "knative")
KUBERNETES = build(REPO / "kubernetes")
FUNCTIONS = ("collect", "health", "backup", "alert-notify", "report")
DOWNWARD_API = {"metadata.name": "k8s-resource-monitor-6d8f7c9b5-x2x4z", "metadata.namespace": "monitoring"}


def _one(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _knative_pod(name: str) -> dict[str, Any]:
    found = [o for o in KNATIVE if o["apiVersion"] == "serving.knative.dev/v1" and o["metadata"]["name"] == name]
    assert len(found) == 1, f"one Knative Service {name} in knative/"
    return found[0]["spec"]["template"]["spec"]


def _serve_pod() -> dict[str, Any]:
    return _one(KUBERNETES, "Deployment", "k8s-resource-monitor")["spec"]["template"]["spec"]


def _config_maps(objects: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"}


# --- the Dockerfile's shape ---------------------------------------------------------------------------------


def test_base_image_is_slim_python_311_pinned_by_tag() -> None:
    (base,) = instructions("FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    """Editing code must not invalidate the pip layer."""
    order = [f"{kw} {args}" for kw, args in INSTRUCTIONS]
    copy_requirements = next(i for i, line in enumerate(order) if line.startswith("COPY requirements.txt"))
    pip_install = next(i for i, line in enumerate(order) if line.startswith("RUN pip install"))
    first_code = next(i for i, line in enumerate(order) if line.startswith(("COPY shared", "COPY functions", "COPY .")))
    assert copy_requirements < pip_install < first_code
    assert "--no-cache-dir" in order[pip_install]


def test_image_has_the_postgresql_client_tools_the_backups_call_without_the_package_weight() -> None:
    """shared/ops/postgres_dump.py runs pg_dump, pg_restore and psql from PATH; the image keeps those
    binaries and libpq, not Debian's wrapper scripts and the perl they need, nor apt's lists."""
    called = set(re.findall(r'"(pg_dump|pg_restore|psql)"', (REPO / "shared/ops/postgres_dump.py").read_text()))
    assert called == {"pg_dump", "pg_restore", "psql"}
    (install,) = [run for run in instructions("RUN") if "postgresql-client" in run]
    assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists/*" in install
    copied = re.search(r"cp ((?:/usr/lib/postgresql/\d+/bin/\S+\s+)+)/usr/local/bin/", install)
    assert copied and {Path(path).name for path in copied.group(1).split()} == called
    assert "purge -y --auto-remove postgresql-client" in install
    marking = re.search(r"&& (for b in pg_dump pg_restore psql; .*?)\s+\| xargs apt-mark manual\s+&&", install)
    assert marking, "the packages of the libraries the binaries link are marked manual before the purge"
    assert all(f"{tool} --version" in install for tool in called), "the build fails if a library went missing"
    order = [f"{kw} {args}" for kw, args in INSTRUCTIONS]
    assert order.index(f"RUN {install}") < next(i for i, line in enumerate(order) if line.startswith("COPY")), \
        "a code or requirements change must not reinstall the client"


@pytest.mark.skipif(not Path("/usr/lib/postgresql/15/bin/psql").exists(), reason="Debian's postgresql-client-15")
def test_the_client_step_marks_the_package_of_every_library_the_binaries_link() -> None:
    """Run on this Debian 12 (merged /usr: ldd says /lib/..., dpkg knows some as /usr/lib/...), the
    Dockerfile's listing names a package for each library, so --auto-remove leaves them all."""
    (install,) = [run for run in instructions("RUN") if "postgresql-client" in run]
    listing = re.search(r"&& (for b in pg_dump pg_restore psql; .*?)\s+\| xargs apt-mark manual\s+&&", install)
    assert listing
    done = subprocess.run(["sh", "-c", listing.group(1)], capture_output=True, text=True, check=True)
    marked = set(done.stdout.split())
    linked = subprocess.run(["sh", "-c", "for b in pg_dump pg_restore psql; do ldd /usr/lib/postgresql/15/bin/$b;"
                             " done | awk '/=> \\//{print $3}' | sort -u"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert len(linked) > 10 and done.stderr == "", done.stderr
    assert {"libpq5", "libreadline8", "libssl3", "libldap-2.5-0", "libc6"} <= marked
    owners = subprocess.run(["dpkg", "-S", *(os.path.realpath(lib) for lib in linked)], capture_output=True,
                            text=True).stdout
    assert {line.split(":")[0] for line in owners.splitlines()} <= marked


def test_image_runs_as_the_numeric_non_root_user_the_installs_expect() -> None:
    users = instructions("USER")
    assert users and INSTRUCTIONS[-1][0] == "CMD"
    last_user_at = max(i for i, (kw, _) in enumerate(INSTRUCTIONS) if kw == "USER")
    assert not any(kw == "RUN" for kw, _ in INSTRUCTIONS[last_user_at:]), "nothing may run as root after USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, or Kubernetes cannot verify runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    for name in FUNCTIONS:
        spec = _knative_pod(name)
        assert spec["containers"][0]["securityContext"]["runAsUser"] == int(uid)
        assert spec["securityContext"]["fsGroup"] == int(gid)
    serve = _serve_pod()["securityContext"]
    assert (serve["runAsUser"], serve["runAsGroup"], serve["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_image_environment_makes_shared_importable_and_bounds_threads() -> None:
    env = image_env()
    assert image_workdir() == "/app" and env["PYTHONPATH"] == "/app"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    concurrency = [_knative_pod(n)["containerConcurrency"] for n in FUNCTIONS]
    assert int(env["THREADS"]) >= max(concurrency), "gunicorn must serve as many requests as Knative sends"
    assert "exec functions-framework" in image_cmd()[-1]
    for variable in ("$FUNCTION_SOURCE", "$FUNCTION_TARGET", "${PORT:-8080}"):
        assert variable in image_cmd()[-1]


@pytest.mark.parametrize("path", [".venv/bin/python", "tests/conftest.py", "data/k8s_metrics.db", ".git/HEAD",
                                  "knative/base/service-collect.yaml", "common/base/secrets.example.yaml",
                                  "scripts/debug-bundle.sh", "shared/__pycache__/config.cpython-311.pyc",
                                  "README.md"])
def test_build_context_leaves_out_what_the_image_does_not_need(path: str) -> None:
    assert excluded_from_context(path)


def test_build_context_holds_every_file_the_image_copies() -> None:
    for sources, _ in image_copies():
        for source in sources:
            path = REPO / source
            assert path.exists(), f"COPY {source}: not in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
            assert files
            left_out = [f for f in files if excluded_from_context(f.relative_to(REPO).as_posix())]
            assert left_out == [], "files the image needs but .dockerignore leaves out"


def test_staged_image_holds_only_what_the_image_copies(tmp_path: Path) -> None:
    stage_image(tmp_path)
    app = tmp_path / "app"
    assert {p.name for p in app.iterdir()} == {"requirements.txt", "shared", "functions"}
    assert [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "usr").rglob("*") if p.is_file()] == [
        "usr/local/bin/k8s-monitor"]
    assert not list(tmp_path.rglob("__pycache__"))
    assert os.access(app / "functions" / "collect" / "main.py", os.R_OK)


def test_k8s_monitor_command_is_executable_in_the_image(tmp_path: Path) -> None:
    """COPY keeps the file's mode from the build context: a checkout that lost the bit breaks `serve`."""
    stage_image(tmp_path)
    assert os.access(tmp_path / "usr/local/bin/k8s-monitor", os.X_OK)


# --- the functions' command, run as the image runs it --------------------------------------------------------


def _cluster_env(tmp_path: Path, cluster) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The simulated cluster in place of the in-cluster service account and the real Prometheus."""
    return {"KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
            "PROMETHEUS_URL": cluster.prometheus_url}


def _function(tmp_path: Path, name: str, extra_env: dict[str, str]):  # type: ignore[no-untyped-def]
    downward = {**DOWNWARD_API, "metadata.name": f"{name}-00001-deployment-7d9c8-x2x4z"}
    return running_container(tmp_path, _knative_pod(name), _config_maps(KNATIVE), extra_env, downward)


def test_image_command_serves_health(tmp_path: Path) -> None:
    with _function(tmp_path, "health", {}) as url:
        response = requests.get(f"{url}/health/liveness", timeout=5)
        assert (response.status_code, response.json()["status"]) == (200, "alive")


def test_image_command_collects(tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    with _function(tmp_path, "collect", _cluster_env(tmp_path, cluster)) as url:
        response = requests.post(url, json={}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok" and response.json()["pods"] > 0
    assert (tmp_path / "data" / "k8s_metrics.db").is_file(), "the database lands on the data volume"


def test_image_command_backs_up_the_data_volume_to_the_backup_volume(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    connect(tmp_path / "data" / "k8s_metrics.db").close()
    with _function(tmp_path, "backup", {}) as url:
        response = requests.post(url, json={}, timeout=60)
    assert (response.status_code, response.json()["status"]) == (200, "ok"), response.text
    assert [p.name for p in (tmp_path / "backup").iterdir() if p.name == response.json()["file"]]


def test_image_command_serves_alert_notify(tmp_path: Path) -> None:
    with _function(tmp_path, "alert-notify", {}) as url:
        response = requests.post(url, data=b"{}", timeout=30, headers={
            "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": "dev.knative.sources.ping",
            "Ce-Source": "/test", "Ce-Id": "1"})
    assert response.status_code == 400
    assert "dev.k8smonitor.alert.firing" in response.json()["error"], "the function names the types it takes"


def test_image_command_reports_from_the_data_volume(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    connect(tmp_path / "data" / "k8s_metrics.db").close()  # closed: the read-only opener meets no WAL files
    with _function(tmp_path, "report", {}) as url:
        response = requests.get(f"{url}/?format=json", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"


# --- `k8s-monitor serve`, as the plain install's Deployment runs it ----------------------------------------------


def ok_runs(database: Path) -> int:
    """Collection runs stored as ok (0 while the database or its tables do not exist yet)."""
    if not database.exists():
        return 0
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_for_first_collection(database: Path, timeout_seconds: float = 30) -> None:
    """`serve` collects as soon as it starts; wait until that run is stored."""
    deadline = time.monotonic() + timeout_seconds
    while ok_runs(database) == 0:
        assert time.monotonic() < deadline, "serve stored no collection after it started"
        time.sleep(0.2)


def _probe_url(url: str, probe: dict[str, Any]) -> str:
    assert probe["httpGet"]["port"] == _serve_pod()["containers"][0]["ports"][0]["name"]
    return url + probe["httpGet"]["path"]


def test_deployment_command_serves_every_function_from_the_volumes(tmp_path: Path, cluster, small_scenario) -> None:  # type: ignore[no-untyped-def]
    pod = _serve_pod()
    (container,) = pod["containers"]
    headers = {"Connection": "close"}
    with running_container(tmp_path, pod, _config_maps(KUBERNETES), _cluster_env(tmp_path, cluster),
                           DOWNWARD_API) as url:
        alive = requests.get(_probe_url(url, container["livenessProbe"]), headers=headers, timeout=10)
        assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
        wait_for_first_collection(tmp_path / "data" / "k8s_metrics.db")
        ready = requests.get(_probe_url(url, container["readinessProbe"]), headers=headers, timeout=10)
        assert ready.status_code == 200, ready.text

        collected = requests.post(f"{url}/collect", json={}, headers=headers, timeout=60)
        assert collected.status_code == 200, collected.text
        assert collected.json()["pods"] == len(small_scenario.pods)
        backup = requests.post(f"{url}/backup", json={}, headers=headers, timeout=60)
        assert (backup.status_code, backup.json()["status"]) == (200, "ok"), backup.text
        report = requests.get(f"{url}/report?format=json", headers=headers, timeout=30)
        assert report.status_code == 200 and report.json()["workloads"]
        metrics = requests.get(f"{url}/metrics", headers=headers, timeout=10)
        assert "pods_collected_total" in metrics.text
        health = requests.get(f"{url}/health", headers=headers, timeout=30).json()
        assert (health["database_status"], health["kubernetes_status"]) == ("healthy", "healthy"), health
        alerts = requests.post(f"{url}/alerts", data=b"{}", headers={**headers, "Content-Type": "application/json"},
                               timeout=30)
        assert alerts.status_code == 400, "alert_notify answers at /alerts (an empty payload is refused)"
    assert backup.json()["file"] in {p.name for p in (tmp_path / "backup").iterdir()}, "backups land on their volume"
    assert ok_runs(tmp_path / "data" / "k8s_metrics.db") == 2, "the history lands on the data volume"
