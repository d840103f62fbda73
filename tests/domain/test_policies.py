"""Per-workload policies from pod annotations: applied over the settings, bad values named, never a crash."""

from __future__ import annotations

import msgspec
import pytest

from shared.domain.policies import ANNOTATIONS, workload_policy
from shared.domain.rightsizing import RightsizingPolicy
from shared.sources.kube_objects import MonitorAnnotations

MiB = 1024**2
DEFAULTS = RightsizingPolicy(cpu_percentile=95, memory_headroom=0.15, cpu_floor_millicores=10,
                             memory_floor_bytes=16 * MiB, min_samples=12)


def test_well_formed_annotations_override_the_settings() -> None:
    found = workload_policy({
        "k8s-monitor.io/cpu-percentile": "99", "k8s-monitor.io/memory-headroom": "25%",
        "k8s-monitor.io/min-cpu": "50m", "k8s-monitor.io/max-cpu": "2", "k8s-monitor.io/min-memory": "64Mi",
        "k8s-monitor.io/max-memory": "1Gi", "k8s-monitor.io/cpu-limit-policy": "ratio:2",
        "k8s-monitor.io/memory-limit-policy": "keep", "k8s-monitor.io/min-change-ratio": "0.2",
        "k8s-monitor.io/allow-hpa": "true",
    }, DEFAULTS)
    assert found.errors == () and not found.ignored
    assert found.policy == RightsizingPolicy(99, 0.25, 50, 64 * MiB, 12, 2000, 1024 * MiB, "ratio:2", "keep", 0.2, True)


def test_ignore_true_ignores_the_workload() -> None:
    assert workload_policy({"k8s-monitor.io/ignore": "true"}, DEFAULTS).ignored
    assert not workload_policy({"k8s-monitor.io/ignore": "False"}, DEFAULTS).ignored


@pytest.mark.parametrize(("annotations", "error"), [
    ({"k8s-monitor.io/cpu-percentile": "ninety"},
     "k8s-monitor.io/cpu-percentile: 'ninety' is not a number from 0 to 100, like 95; REPORT_CPU_PERCENTILE (95) "
     "is used"),
    ({"k8s-monitor.io/cpu-percentile": "150"},
     "k8s-monitor.io/cpu-percentile: '150' is not a number from 0 to 100, like 95; REPORT_CPU_PERCENTILE (95) is used"),
    ({"k8s-monitor.io/memory-headroom": "plenty"},
     "k8s-monitor.io/memory-headroom: 'plenty' is not a fraction or percentage, like 0.2 or 20%; "
     "REPORT_MEMORY_HEADROOM (15%) is used"),
    ({"k8s-monitor.io/max-memory": "1 GB"},
     "k8s-monitor.io/max-memory: '1 GB' is not a memory quantity, like 4Gi; REPORT_MEMORY_MAX_BYTES (unset) is used"),
    ({"k8s-monitor.io/min-cpu": "-1"},
     "k8s-monitor.io/min-cpu: '-1' is not a CPU quantity, like 100m; REPORT_CPU_FLOOR_MILLICORES (10m) is used"),
    ({"k8s-monitor.io/cpu-limit-policy": "ratio:0.5"},
     "k8s-monitor.io/cpu-limit-policy: 'ratio:0.5' is not none, keep or ratio:N (N from 1 to 100); "
     "REPORT_CPU_LIMIT_POLICY (keep) is used"),
    ({"k8s-monitor.io/allow-hpa": "yes"},
     "k8s-monitor.io/allow-hpa: 'yes' is not \"true\" or \"false\"; REPORT_ALLOW_HPA (false) is used"),
    ({"k8s-monitor.io/ignore": "please"},
     "k8s-monitor.io/ignore: 'please' is not \"true\" or \"false\"; the workload is not ignored"),
    ({"k8s-monitor.io/min-memory": "2Gi", "k8s-monitor.io/max-memory": "1Gi"},
     "k8s-monitor.io/min-memory (2Gi) is above k8s-monitor.io/max-memory (1Gi); both are left at their defaults"),
])
def test_a_bad_value_is_named_and_its_default_kept(annotations: dict[str, str], error: str) -> None:
    found = workload_policy({**annotations, "k8s-monitor.io/cpu-percentile": annotations.get(
        "k8s-monitor.io/cpu-percentile", "90")}, DEFAULTS)
    assert found.errors == (error,)
    assert found.policy.cpu_percentile == (95 if "cpu-percentile" in str(annotations) else 90)  # the others apply
    assert found.policy.memory_floor_bytes == DEFAULTS.memory_floor_bytes
    assert found.policy.memory_max_bytes is None and found.policy.allow_hpa is False


def test_the_annotations_read_from_pods_are_the_ones_policies_know() -> None:
    names = {f.encode_name for f in msgspec.structs.fields(MonitorAnnotations)}
    assert names == set(ANNOTATIONS)
