"""scripts/debug-bundle.sh against a fake `kubectl` on PATH that records every call and answers canned
output: the bundle holds the Knative objects, logs (previous instances too), events and the monitor's
own diagnosis, goes on past failing commands, and never asks for a Secret's values."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.servers import REPO

SCRIPT = REPO / "scripts" / "debug-bundle.sh"
Completed = subprocess.CompletedProcess[str]
PODS = {"collect-00002-deployment-7c9d5b-x2k9q": ("collect", "queue-proxy"),
        "health-00001-deployment-5f6c7d-abcde": ("health", "queue-proxy")}
ARCHIVE_IN_POD = "/tmp/k8s-monitor-diagnose-20240115_103000.tar.gz"

FAKE_KUBECTL = r'''#!/usr/bin/env -S python3 -S
"""A kubectl that records its arguments (one JSON list per line) and answers like a small cluster."""
import json, os, sys

args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
pods = json.loads(os.environ["FAKE_PODS"])
verb = args[0] if args else ""
if verb == "top":
    sys.stderr.write("error: Metrics API not available\n")
    sys.exit(1)
if verb == "get" and args[1] == "pods" and any(a.startswith("jsonpath=") for a in args):
    for pod, containers in pods.items():
        print(pod, " ".join(containers))
    sys.exit(0)
if verb == "get" and args[1] == "pods" and "-o" in args and args[args.index("-o") + 1] == "name":
    selector = args[args.index("-l") + 1]
    prefix = "health-" if selector == "serving.knative.dev/service=health" else "k8s-resource-monitor-"
    print("\n".join(f"pod/{pod}" for pod in pods if pod.startswith(prefix)))
    sys.exit(0)
if verb == "get" and args[1] == "secrets":
    print("NAME                         TYPE     DATA   AGE\nk8s-resource-monitor-slack   Opaque   1      3d")
    sys.exit(0)
if verb == "logs":
    pod, container = args[args.index("-n") + 2], args[args.index("-c") + 1]
    if "--previous" in args:
        if pod.startswith("collect-") and container == "collect":
            print('{"level": "INFO", "message": "collection ok: 40 pods", "instance": "previous"}')
            sys.exit(0)
        sys.stderr.write(f'Error from server (BadRequest): previous terminated container "{container}" not found\n')
        sys.exit(1)
    print(json.dumps({"level": "INFO", "message": f"log of {pod}/{container}"}))
    sys.exit(0)
if verb == "exec":
    command = args[args.index("--") + 1:]
    if command[:3] == ["python", "-m", "shared"]:
        print("k8s-resource-monitor 0.1.0 diagnose at 2024-01-15T10:30:00Z: all checks ok")
        print("archive: " + os.environ["FAKE_ARCHIVE"])
        sys.exit(0)
    if command[0] == "cat":
        sys.stdout.buffer.write(b"\x1f\x8b fake archive bytes")
        sys.exit(0)
    sys.exit(0)
print("canned answer to: kubectl " + " ".join(args))
'''


def with_fake_kubectl(tmp_path: Path, pods: dict[str, tuple[str, ...]] = PODS) -> dict[str, str]:
    """An environment whose PATH starts with the fake kubectl; its calls go to FAKE_KUBECTL_LOG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_KUBECTL_LOG": str(tmp_path / "calls.jsonl"),
            "FAKE_PODS": json.dumps(pods), "FAKE_ARCHIVE": ARCHIVE_IN_POD}


@pytest.fixture
def fake_kubectl(tmp_path: Path) -> dict[str, str]:
    return with_fake_kubectl(tmp_path)


@pytest.fixture(scope="module")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Completed]:
    """One run with every default, in a fresh folder: (that folder, its environment, the result)."""
    here = tmp_path_factory.mktemp("defaults")
    env = with_fake_kubectl(here)
    return here, env, run_bundle(env, cwd=here)


def run_bundle(env: dict[str, str], *args: str, cwd: Path) -> Completed:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def calls(env: dict[str, str]) -> list[list[str]]:
    return [json.loads(line) for line in Path(env["FAKE_KUBECTL_LOG"]).read_text().splitlines()]


def test_the_bundle_holds_the_knative_objects_logs_events_and_the_diagnosis(
        tmp_path: Path, fake_kubectl: dict[str, str]) -> None:
    out = tmp_path / "bundle"
    result = run_bundle(fake_kubectl, "-n", "mon", "-l", "app=k8s-monitor", "-o", str(out), "--tail", "50",
                        cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"version.txt", "resources.txt", "rbac.txt", "ksvc.yaml", "eventing.yaml", "knative-config-features.yaml",
            "events.txt", "configmaps.yaml", "secrets.txt", "nodes.txt", "nodes-usage.txt", "pods-usage.txt",
            "diagnose.txt", "k8s-monitor-diagnose-20240115_103000.tar.gz"} <= files
    assert {f"describe-{kind}.txt" for kind in ("ksvc", "revisions", "pingsources", "brokers", "triggers",
                                               "sinkbindings", "pods", "persistentvolumeclaims")} <= files
    logs = {name for name in files if name.startswith("logs/")}
    assert logs == {f"logs/{pod}.{container}.log" for pod, containers in PODS.items() for container in containers} | {
        "logs/collect-00002-deployment-7c9d5b-x2k9q.collect.previous.log"}
    previous = out / "logs/collect-00002-deployment-7c9d5b-x2k9q.collect.previous.log"
    assert '"instance": "previous"' in previous.read_text()
    resources = (out / "resources.txt").read_text()
    for kind in ("ksvc", "revisions", "routes", "configurations", "pingsources", "brokers", "triggers", "sinkbindings",
                 "pods", "persistentvolumeclaims"):
        assert f"### kubectl get {kind} -n mon -l app=k8s-monitor -o wide" in resources
    assert "Metrics API not available" in (out / "nodes-usage.txt").read_text()  # noted, and the bundle went on
    assert (out / "k8s-monitor-diagnose-20240115_103000.tar.gz").read_bytes() == b"\x1f\x8b fake archive bytes"
    with tarfile.open(f"{out}.tar.gz") as tar:
        assert "bundle/events.txt" in tar.getnames()
    assert "2 kubectl command(s) exited non-zero" in result.stdout

    recorded = calls(fake_kubectl)
    for call in recorded:
        if call[0] in ("get", "describe", "logs", "exec", "top") and "nodes" not in call and \
                not call[1].startswith("clusterrole") and "knative-serving" not in call:
            assert call[call.index("-n") + 1] == "mon", call
    for kind in ("ksvc", "revisions", "pingsources", "brokers", "triggers", "sinkbindings", "pods"):
        assert ["describe", kind, "-n", "mon", "-l", "app=k8s-monitor"] in recorded
    assert ["logs", "-n", "mon", "health-00001-deployment-5f6c7d-abcde", "-c", "queue-proxy", "--tail=50",
            "--timestamps"] in recorded
    assert ["exec", "-n", "mon", "pod/health-00001-deployment-5f6c7d-abcde", "-c", "health", "--", "python", "-m",
            "shared", "diagnose", "--output", "/tmp"] in recorded
    assert ["exec", "-n", "mon", "pod/health-00001-deployment-5f6c7d-abcde", "-c", "health", "--", "rm", "-f",
            ARCHIVE_IN_POD] in recorded


def test_the_plain_install_is_diagnosed_in_its_serve_pod(tmp_path: Path) -> None:
    env = with_fake_kubectl(tmp_path, {"k8s-resource-monitor-6d8f7c9b5-x2x4z": ("serve",)})
    out = tmp_path / "bundle"
    result = run_bundle(env, "-o", str(out), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    recorded = calls(env)
    assert ["describe", "deployments", "-n", "monitoring", "-l", "app.kubernetes.io/part-of=k8s-resource-monitor"] \
        in recorded
    assert ["exec", "-n", "monitoring", "pod/k8s-resource-monitor-6d8f7c9b5-x2x4z", "-c", "serve", "--", "python",
            "-m", "shared", "diagnose", "--output", "/tmp"] in recorded
    assert (out / "k8s-monitor-diagnose-20240115_103000.tar.gz").read_bytes() == b"\x1f\x8b fake archive bytes"
    assert (out / "logs" / "k8s-resource-monitor-6d8f7c9b5-x2x4z.serve.log").is_file()


def test_no_secret_value_is_ever_requested(default_bundle) -> None:  # type: ignore[no-untyped-def]
    here, env, result = default_bundle

    assert result.returncode == 0, result.stderr
    recorded = calls(env)
    secret_calls = [call for call in recorded if any("secret" in part for part in call[:2])]
    assert secret_calls == [
        ["get", "secrets", "-n", "monitoring", "-l", "app.kubernetes.io/part-of=k8s-resource-monitor"]]
    for call in recorded:
        kinds = call[1].split(",") if len(call) > 1 else []
        assert not {"secret", "secrets", "all"} & set(kinds) or "-o" not in call, call
        assert not (call[0] == "describe" and "secret" in call[1]), call
    (folder,) = [p for p in here.glob("k8s-monitor-debug-*") if p.is_dir()]
    assert "k8s-resource-monitor-slack" in (folder / "secrets.txt").read_text()


def test_defaults_write_a_timestamped_bundle_here(default_bundle) -> None:  # type: ignore[no-untyped-def]
    here, env, result = default_bundle

    assert result.returncode == 0, result.stderr
    (folder,) = [p for p in here.glob("k8s-monitor-debug-*") if p.is_dir()]
    assert folder.name[len("k8s-monitor-debug-"):].replace("_", "").isdigit()
    assert (here / f"{folder.name}.tar.gz").is_file()
    assert ["get", "events", "-n", "monitoring", "--sort-by=.lastTimestamp"] in calls(env)


def test_bad_arguments_are_refused_with_the_usage(tmp_path: Path, fake_kubectl: dict[str, str]) -> None:
    unknown = run_bundle(fake_kubectl, "--namespaces", "x", cwd=tmp_path)
    tail = run_bundle(fake_kubectl, "--tail", "many", cwd=tmp_path)

    assert (unknown.returncode, tail.returncode) == (2, 2)
    assert "unknown argument: --namespaces" in unknown.stderr and "usage: scripts/debug-bundle.sh" in unknown.stderr
    assert "--tail needs a number, got: many" in tail.stderr
    assert not Path(fake_kubectl["FAKE_KUBECTL_LOG"]).exists()
