"""The Dockerfile, checked without a Docker engine: its layers, its user, and its command really run.

There is no Docker here, so the image's command is run the way the image runs it: the files the
Dockerfile COPYs (minus what .dockerignore leaves out of the build context) are staged in a
directory standing for /app, and the CMD runs under `/bin/sh -c` in that directory with only the
image's ENV, the Knative Service's env and ConfigMap, and the volumes' paths mapped to temporary
directories. Each function then answers over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

from shared.store.connection import connect
from tests.servers import BIN, free_port, stop_process, wait_until_up

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
KNATIVE = REPO / "knative"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # comments may sit inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _all(keyword: str) -> list[str]:
    return [arguments for kw, arguments in INSTRUCTIONS if kw == keyword]


def image_env() -> dict[str, str]:
    """Every `ENV key=value ...` of the Dockerfile, later ones winning, as the image holds them."""
    env: dict[str, str] = {}
    for arguments in _all("ENV"):
        for token in shlex.split(arguments):
            key, separator, value = token.partition("=")
            assert separator, f"ENV {arguments!r}: use the key=value form"
            env[key] = value
    return env


def image_workdir() -> str:
    return _all("WORKDIR")[-1]


def image_cmd() -> list[str]:
    """The command line Docker runs: exec form as written, shell form under /bin/sh -c."""
    (command,) = _all("CMD")
    if command.startswith("["):
        return json.loads(command)
    return ["/bin/sh", "-c", command]


def image_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context."""
    copies = []
    for arguments in _all("COPY"):
        parts = shlex.split(arguments)
        assert not any(p.startswith("--") for p in parts), f"COPY {arguments}: flags are not modelled here"
        copies.append((parts[:-1], parts[-1]))
    return copies


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (negated, regex), with Docker's `*`, `?` and `**` meanings."""
    patterns = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(regex + "$")))
    return patterns


IGNORE = _ignore_patterns()


def excluded_from_context(relative_path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    parts = relative_path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in IGNORE:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _context_files(source: str) -> list[Path]:
    path = REPO / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if not excluded_from_context(f.relative_to(REPO).as_posix())]


def stage_app(app_dir: Path) -> None:
    """What the image's COPY instructions put under WORKDIR, written into `app_dir`."""
    workdir = Path(image_workdir())
    for sources, destination in image_copies():
        target = workdir / destination
        assert target.is_relative_to(workdir), f"COPY to {destination}: only WORKDIR is staged"
        for source in sources:
            for file in _context_files(source):
                if (REPO / source).is_dir():
                    inside = target / file.relative_to(REPO / source)
                else:
                    inside = target / file.name if destination.endswith("/") else target
                staged = app_dir / inside.relative_to(workdir)
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, staged)


def _knative_service(name: str) -> dict:
    return yaml.safe_load((KNATIVE / f"service-{name}.yaml").read_text(encoding="utf-8"))


def _config_map() -> dict[str, str]:
    return yaml.safe_load((KNATIVE / "config.yaml").read_text(encoding="utf-8"))["data"]


# --- the Dockerfile's shape ---------------------------------------------------------------------------------


def test_base_image_is_slim_python_311_pinned_by_tag() -> None:
    (base,) = _all("FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    """Editing code must not invalidate the pip layer."""
    order = [f"{kw} {args}" for kw, args in INSTRUCTIONS]
    copy_requirements = next(i for i, line in enumerate(order) if line.startswith("COPY requirements.txt"))
    pip_install = next(i for i, line in enumerate(order) if line.startswith("RUN pip install"))
    first_code = next(i for i, line in enumerate(order) if line.startswith(("COPY shared", "COPY functions", "COPY .")))
    assert copy_requirements < pip_install < first_code
    assert "--no-cache-dir" in order[pip_install]


def test_image_runs_as_the_numeric_non_root_user_the_services_expect() -> None:
    users = _all("USER")
    assert users and INSTRUCTIONS[-1][0] == "CMD"
    last_user_at = max(i for i, (kw, _) in enumerate(INSTRUCTIONS) if kw == "USER")
    assert not any(kw == "RUN" for kw, _ in INSTRUCTIONS[last_user_at:]), "nothing may run as root after USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, or Kubernetes cannot verify runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    for name in ("collect", "health", "backup", "alert-notify", "report"):
        spec = _knative_service(name)["spec"]["template"]["spec"]
        assert spec["containers"][0]["securityContext"]["runAsUser"] == int(uid)
        assert spec["securityContext"]["fsGroup"] == int(gid)


def test_image_environment_makes_shared_importable_and_bounds_threads() -> None:
    env = image_env()
    assert image_workdir() == "/app" and env["PYTHONPATH"] == "/app"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    concurrency = [_knative_service(n)["spec"]["template"]["spec"]["containerConcurrency"]
                   for n in ("collect", "health", "backup", "alert-notify", "report")]
    assert int(env["THREADS"]) >= max(concurrency), "gunicorn must serve as many requests as Knative sends"
    assert "exec functions-framework" in image_cmd()[-1]
    for variable in ("$FUNCTION_SOURCE", "$FUNCTION_TARGET", "${PORT:-8080}"):
        assert variable in image_cmd()[-1]


@pytest.mark.parametrize("path", [".venv/bin/python", "tests/conftest.py", "data/k8s_metrics.db", ".git/HEAD",
                                  "knative/config.yaml", "shared/__pycache__/config.cpython-311.pyc", "README.md"])
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


# --- the command, run as the image runs it ---------------------------------------------------------------------


@contextmanager
def running_image(tmp_path: Path, service: str, extra_env: dict[str, str]) -> Iterator[str]:
    """The image's CMD for Knative Service `service`; yields its URL. /app, /data and /backup are
    temporary directories, as the image's WORKDIR and the Service's volumes would be."""
    mounts = {"/app": tmp_path / "app", "/data": tmp_path / "data", "/backup": tmp_path / "backup"}
    for directory in mounts.values():
        directory.mkdir(exist_ok=True)
    stage_app(mounts["/app"])

    def mapped(value: str) -> str:
        for inside, outside in mounts.items():
            if value == inside or value.startswith(inside + "/"):
                return str(outside) + value[len(inside):]
        return value

    container = _knative_service(service)["spec"]["template"]["spec"]["containers"][0]
    literal_env = {e["name"]: e["value"] for e in container.get("env", ()) if "value" in e}
    port = free_port()
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",  # the virtualenv stands for the image's /usr/local/bin
        "HOME": str(tmp_path),
        **{key: mapped(value) for key, value in image_env().items()},
        **{key: mapped(value) for key, value in _config_map().items()},
        **literal_env,
        "PORT": str(port),
        **extra_env,
    }
    process = subprocess.Popen(image_cmd(), cwd=mapped(image_workdir()), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(url, process)
        except RuntimeError:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
            raise AssertionError(f"{service} did not start:\n{output[-3000:]}") from None
        yield url
    finally:
        stop_process(process)


def _cluster_env(tmp_path: Path, cluster) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The simulated cluster in place of the in-cluster service account and the real Prometheus."""
    return {"KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
            "PROMETHEUS_URL": cluster.prometheus_url,
            "POD_NAME": "collect-00001-deployment-7d9c8-x2x4z", "POD_NAMESPACE": "monitoring"}


def test_image_command_serves_health(tmp_path: Path) -> None:
    with running_image(tmp_path, "health", {}) as url:
        response = requests.get(f"{url}/health/liveness", timeout=5)
        assert (response.status_code, response.json()["status"]) == (200, "alive")


def test_image_command_collects(tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    with running_image(tmp_path, "collect", _cluster_env(tmp_path, cluster)) as url:
        response = requests.post(url, json={}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok" and response.json()["pods"] > 0
    assert (tmp_path / "data" / "k8s_metrics.db").is_file(), "the database lands on the data volume"


def test_image_command_backs_up_the_data_volume_to_the_backup_volume(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    connect(tmp_path / "data" / "k8s_metrics.db").close()
    with running_image(tmp_path, "backup", {}) as url:
        response = requests.post(url, json={}, timeout=60)
    assert (response.status_code, response.json()["status"]) == (200, "ok"), response.text
    assert [p.name for p in (tmp_path / "backup").iterdir() if p.name == response.json()["file"]]


def test_image_command_serves_alert_notify(tmp_path: Path) -> None:
    with running_image(tmp_path, "alert-notify", {}) as url:
        response = requests.post(url, data=b"{}", timeout=30, headers={
            "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": "dev.knative.sources.ping",
            "Ce-Source": "/test", "Ce-Id": "1"})
    assert response.status_code == 400
    assert "dev.k8smonitor.alert.firing" in response.json()["error"], "the function names the types it takes"


def test_image_command_reports_from_the_data_volume(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    connect(tmp_path / "data" / "k8s_metrics.db").close()  # closed: the read-only opener meets no WAL files
    with running_image(tmp_path, "report", {}) as url:
        response = requests.get(f"{url}/?format=json", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"


def test_staged_app_holds_only_what_the_image_copies(tmp_path: Path) -> None:
    stage_app(tmp_path)
    top_level = {p.name for p in tmp_path.iterdir()}
    assert top_level == {"requirements.txt", "shared", "functions"}
    assert not list(tmp_path.rglob("__pycache__"))
    assert os.access(tmp_path / "functions" / "collect" / "main.py", os.R_OK)
