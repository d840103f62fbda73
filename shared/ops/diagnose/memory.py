"""The diagnose check of memory: this container's cgroup accounting, and the monitor's own containers as collected.

A collection holds a page of pods at a time; a container near its memory limit is one busy run away
from OOMKilled, and the fix is a higher limit or a smaller page.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from shared.core.formats import format_bytes
from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, Finding, Section
from shared.store.connection import StoreError, open_store
from shared.store.run_status import SUCCESSFUL_RUN

# A container whose peak working set comes this close to its limit is one busy run away from OOMKilled.
MEMORY_NEAR_LIMIT_RATIO = 0.9
# The Services of knative/: each revision runs as the Deployment `<service>-<revision suffix>-deployment`;
# the plain install (kubernetes/) runs `serve` as the Deployment SERVE_DEPLOYMENT.
MONITOR_SERVICES = ("collect", "health", "backup", "alert-notify", "report")
SERVE_DEPLOYMENT = "k8s-resource-monitor"
MEMORY_FIX = ("raise resources.limits.memory of the Service in knative/base/service-<name>.yaml (or of the "
              "Deployment in kubernetes/base/deployment.yaml), or make a collection hold less: a smaller "
              "KUBE_PAGE_SIZE (now {page_size} pods per page) or fewer namespaces (NAMESPACES_INCLUDE)")


def memory_section(settings: Settings, cgroup_root: Path) -> Section:
    """This container's memory accounting (cgroup), and the monitor's own containers as it collected them."""
    data: dict[str, Any] = {"kube_page_size": settings.kube_page_size}
    findings = []
    fix = MEMORY_FIX.format(page_size=settings.kube_page_size)
    cgroup = container_memory(cgroup_root)
    data["this_container"] = cgroup
    if cgroup:
        limit, peak, kills = cgroup.get("limit_bytes"), cgroup.get("peak_bytes"), cgroup.get("oom_kills", 0)
        near = bool(limit and peak and peak >= MEMORY_NEAR_LIMIT_RATIO * limit)
        detail = (f"peak {format_bytes(peak) if peak else 'unknown'}, "
                  f"limit {format_bytes(limit) if limit else 'none'}, "
                  f"{kills} OOM kill(s)")
        findings.append(Finding("this container (where diagnose runs)", PROBLEM if kills or near else OK, detail,
                                fix if kills or near else None))
    namespace = settings.pod_namespace or "monitoring"
    try:
        own = _own_containers(settings, namespace)
    except (StoreError, sqlite3.Error) as exc:
        own = None
        data["own_containers_error"] = redact(str(exc))
    data["own_containers"] = own
    for row in own or ():
        subject = f"pod {namespace}/{row['pod']} container {row['container']}"
        limit, peak = row["memory_limit_bytes"], row["memory_working_set_max_bytes"]
        oom = row["last_termination_reason"] == "OOMKilled"
        near = bool(limit and peak and peak >= MEMORY_NEAR_LIMIT_RATIO * limit)
        detail = (f"peak working set {format_bytes(peak) if peak else 'unknown'}, "
                  f"limit {format_bytes(limit) if limit else 'none'}, "
                  f"{row['restart_count']} restart(s)" + (", last terminated OOMKilled" if oom else ""))
        findings.append(Finding(subject, PROBLEM if oom or near else OK, detail, fix if oom or near else None))
    if own is None:
        own_text = "the monitor's own containers unknown (no readable database)"
    else:
        own_text = f"{len(own)} container(s) of the monitor in namespace {namespace} in the last collection"
    problems = [f for f in findings if f.status != OK]
    summary = (f"{findings[0].detail} here; " if cgroup else "no cgroup memory accounting here; ") + own_text
    return Section(PROBLEM if problems else OK, summary + f"; KUBE_PAGE_SIZE={settings.kube_page_size}", findings, data)


def container_memory(cgroup_root: Path) -> dict[str, int | None]:
    """Limit, current use, peak and OOM kills of this process's cgroup (v2, else v1); {} when not there.

    Run in a pod (`kubectl exec`), this is that container's accounting: the peak includes every
    request it served since it started.
    """

    def number(path: Path) -> int | None:
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def counter(path: Path, key: str) -> int:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in lines if line.startswith(key + " ")), 0)

    if (cgroup_root / "memory.current").exists():  # v2: the root, as mounted in a container
        return {"limit_bytes": number(cgroup_root / "memory.max"),
                "current_bytes": number(cgroup_root / "memory.current"),
                "peak_bytes": number(cgroup_root / "memory.peak"),
                "oom_kills": counter(cgroup_root / "memory.events", "oom_kill")}
    v1 = cgroup_root / "memory"
    if (v1 / "memory.usage_in_bytes").exists():
        limit = number(v1 / "memory.limit_in_bytes")
        return {"limit_bytes": limit if limit is not None and limit < 2**60 else None,  # v1's "no limit": ~2**63
                "current_bytes": number(v1 / "memory.usage_in_bytes"),
                "peak_bytes": number(v1 / "memory.max_usage_in_bytes"),
                "oom_kills": counter(v1 / "memory.oom_control", "oom_kill")}
    return {}


def _own_containers(settings: Settings, namespace: str) -> list[dict[str, Any]]:
    """The monitor's containers in the latest ok/partial run, as it collected itself: peak memory vs limit.

    They are the pods of the Deployments Knative makes for the MONITOR_SERVICES in `namespace`, or of the
    plain install's SERVE_DEPLOYMENT.
    """
    conn = open_store(settings, readonly=True)
    try:
        cursor = conn.execute(
            f"""
            SELECT w.kind, w.name AS workload, c.name AS container, p.name AS pod,
                   s.memory_working_set_max_bytes, cs.memory_limit_bytes, s.restart_count, s.last_termination_reason
            FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN pods p ON p.id = cs.pod_id
            JOIN containers c ON c.id = cs.container_id JOIN workloads w ON w.id = c.workload_id
            WHERE w.namespace = ? AND s.run_id = (
                SELECT id FROM runs WHERE {SUCCESSFUL_RUN} ORDER BY started_at DESC, id DESC LIMIT 1)
            ORDER BY workload, container, pod
            """, (namespace,))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        conn.close()
    return [row for row in rows if row["kind"] == "Deployment" and _is_monitor(row["workload"])]


def _is_monitor(deployment: str) -> bool:
    """Whether a Deployment runs the monitor: a Knative revision of one of its Services, or `serve`."""
    return deployment == SERVE_DEPLOYMENT or (
        deployment.endswith("-deployment") and deployment.startswith(tuple(f"{s}-" for s in MONITOR_SERVICES)))
