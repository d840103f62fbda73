"""Patches to apply: one strategic-merge patch per workload, applied to real manifests by the real kubectl."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from shared.domain.costs import ContainerCosts
from shared.domain.patches import cpu_quantity, memory_quantity, patches_text, workload_patches
from shared.domain.rightsizing import Current, RightsizingPolicy, UsageEvidence, recommend

MiB = 1024**2
POLICY = RightsizingPolicy(cpu_percentile=95, memory_headroom=0.15, cpu_floor_millicores=10,
                           memory_floor_bytes=16 * MiB, min_samples=12)


def container(namespace: str, kind: str, workload: str, name: str, cpu_p95: float, memory_peak: int,
              current: Current, policy: RightsizingPolicy = POLICY, **flags: Any) -> Any:
    r = recommend(UsageEvidence(7 * 86_400, 2016, cpu_p95, True, 2016, memory_peak, 7 * 86_400, current), policy)
    return SimpleNamespace(namespace=namespace, workload_kind=kind, workload_name=workload, container=name,
                           recommendation=r, gone=flags.get("gone", False), sidecar=flags.get("sidecar", False),
                           costs=ContainerCosts(0, 0, flags.get("savings", 1.5), 0))


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      initContainers:
      - {name: mesh, image: envoy:1.31, restartPolicy: Always,
         resources: {requests: {cpu: 300m, memory: 128Mi}, limits: {memory: 128Mi}}}
      containers:
      - {name: app, image: "app:1",
         resources: {requests: {cpu: 500m, memory: 512Mi}, limits: {cpu: "1", memory: 512Mi}}}
      - {name: proxy, image: "proxy:2", resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}}
"""
CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: batch}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: report, image: "report:3", resources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 4Gi}}}
"""


def kubectl_patch(tmp_path: Path, manifest: str, patch: str) -> dict:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (scripts/ensure-system-packages installs it)")
    (tmp_path / "manifest.yaml").write_text(manifest)
    (tmp_path / "patch.yaml").write_text(patch)
    done = subprocess.run([kubectl, "patch", "--local", "-f", str(tmp_path / "manifest.yaml"), "--type", "strategic",
                           "--patch-file", str(tmp_path / "patch.yaml"), "-o", "yaml"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def resources(pod_spec: dict, section: str = "containers") -> dict[str, dict]:
    return {c["name"]: c.get("resources", {}) for c in pod_spec[section]}


def test_each_patch_applied_by_kubectl_sets_exactly_the_recommended_values(tmp_path: Path) -> None:
    no_cpu_limits = replace(POLICY, cpu_limit_policy="none")
    containers = [
        # app: CPU 500m -> 184m, its CPU limit removed; memory 512Mi -> 460Mi (400Mi + 15 %), limit too
        container("shop", "Deployment", "api", "app", 183.2, 400 * MiB, Current(500, 1000, 512 * MiB, 512 * MiB),
                  no_cpu_limits),
        # proxy: everything within 10 %: keep, so not in the patch
        container("shop", "Deployment", "api", "proxy", 95, 56 * MiB, Current(100, None, 64 * MiB, 64 * MiB)),
        # mesh, a native sidecar: CPU 300m -> 40m, memory kept (112Mi x 1.15 = 129Mi is within 10 % of 128Mi)
        container("shop", "Deployment", "api", "mesh", 40, 112 * MiB, Current(300, None, 128 * MiB, 128 * MiB),
                  sidecar=True),
        # a CronJob's container: CPU 2 -> 1.5 cores, memory 4Gi -> 1.5Gi (request and limit)
        container("batch", "CronJob", "nightly", "report", 1500, 1335 * MiB, Current(2000, None, 4096 * MiB,
                                                                                    4096 * MiB)),
    ]
    patches, skipped = workload_patches(containers)
    assert skipped == []
    api, nightly = patches

    assert api.key == "shop/Deployment/api" and api.savings_per_month == 3.0  # app and mesh
    assert api.changes == ("mesh: CPU request 300m -> 40m (lower)", "app: CPU request 500m -> 184m (lower)",
                           "app: memory request 512Mi -> 460Mi (lower)", "app: CPU limit 1000m -> none (remove)",
                           "app: memory limit 512Mi -> 460Mi (lower)")
    patched = kubectl_patch(tmp_path, DEPLOYMENT, api.text)["spec"]["template"]["spec"]
    assert resources(patched) == {
        "app": {"requests": {"cpu": "184m", "memory": "460Mi"}, "limits": {"memory": "460Mi"}},
        "proxy": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}},
    }
    assert resources(patched, "initContainers") == {
        "mesh": {"requests": {"cpu": "40m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}}}
    assert [c["image"] for c in patched["containers"]] == ["app:1", "proxy:2"]  # merged by name, nothing else

    assert nightly.text.startswith("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n"
                                   "  namespace: batch\nspec:\n  jobTemplate:\n    spec:\n      template:\n")
    job = kubectl_patch(tmp_path, CRONJOB, nightly.text)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert resources(job) == {"report": {"requests": {"cpu": "1500m", "memory": "1536Mi"},
                                         "limits": {"memory": "1536Mi"}}}


def test_workloads_with_nothing_to_change_get_no_patch_and_jobs_pods_and_gone_ones_say_why() -> None:
    keep = Current(100, None, 64 * MiB, 64 * MiB)
    lower = Current(1000, None, 1024 * MiB, 1024 * MiB)
    patches, skipped = workload_patches([
        container("shop", "StatefulSet", "db", "db", 95, 56 * MiB, keep),
        container("batch", "Job", "migrate", "migrate", 50, 100 * MiB, lower),
        container("shop", "Pod", "debug", "shell", 50, 100 * MiB, lower),
        container("ci", "Deployment", "preview", "app", 50, 100 * MiB, lower, gone=True),
    ])
    assert patches == []
    assert [(s.workload, s.reason) for s in skipped] == [
        ("batch/Job/migrate", "a Job's pod template cannot be changed: change what creates it"),
        ("shop/Pod/debug", "a Pod's pod template cannot be changed: change what creates it"),
        ("ci/Deployment/preview", "gone: not seen by the newest collection"),
    ]
    text = patches_text(patches, skipped, "USD")
    assert "# no patch for ci/Deployment/preview: gone: not seen by the newest collection\n" in text
    assert text.endswith("# nothing to change: every recommendation is keep (or not enough data)\n")
    assert list(yaml.safe_load_all(text)) == []


def test_the_stream_holds_one_document_per_patch_with_what_it_changes() -> None:
    patches, skipped = workload_patches([
        container("shop", "Deployment", "api", "app", 183.2, 400 * MiB, Current(500, 1000, 512 * MiB, 512 * MiB)),
        container("shop", "DaemonSet", "agent", "agent", 20, 30 * MiB, Current(100, None, 64 * MiB, 64 * MiB),
                  savings=0.25),
    ])
    text = patches_text(patches, skipped, "EUR")
    documents = list(yaml.safe_load_all(text))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [("Deployment", "api"), ("DaemonSet", "agent")]
    assert "---\n# shop/DaemonSet/agent: saves 0.25 EUR/month\n#   agent: CPU request 100m -> 20m (lower)\n" in text


def test_quantities_are_written_exactly() -> None:
    assert [cpu_quantity(v) for v in (1, 250, 1000, 1500, 2000)] == ["1m", "250m", "1", "1500m", "2"]
    assert [memory_quantity(v) for v in (1024**3, 460 * MiB, 1536 * MiB, 900 * 1024, 1000)] == \
        ["1Gi", "460Mi", "1536Mi", "900Ki", "1000"]
