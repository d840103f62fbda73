"""Stored history for the report tests: samples written with plain SQL into a real database.

The report reads what the collector writes; writing rows directly lets a test state every value it
expects, sample by sample. As the collector does, a sample names its container span: the pod's
container with its phase, requests and limits, one span for as long as they stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.store.dialect import Connection

MiB = 1024**2
# What a sample was: its row (s), its run (r: when, the window) and its span (cs: container, pod, phase,
# requests, limits); its time is its run's start in whole seconds.
SAMPLES = "samples s JOIN runs r ON r.id = s.run_id JOIN container_spans cs ON cs.id = s.span_id"
SAMPLE_TS = "CAST(r.started_at AS INTEGER)"


@dataclass
class Sample:
    """One raw sample (one pod's container at one collection); defaults are a healthy small container."""

    cpu_usage_avg_millicores: int | None = 100
    cpu_usage_max_millicores: int | None = 150
    memory_working_set_avg_bytes: int | None = 100 * MiB
    memory_working_set_max_bytes: int | None = 110 * MiB
    cpu_request_millicores: int | None = 500
    cpu_limit_millicores: int | None = 1000
    memory_request_bytes: int | None = 256 * MiB
    memory_limit_bytes: int | None = 512 * MiB
    cpu_throttled_ratio: float | None = 0.0
    restart_count: int = 0
    last_termination_reason: str | None = None
    oom_events: int | None = 0
    phase: str = "Running"
    pod: str = "pod-0"


@dataclass
class History:
    """Writes workloads, containers, pods, runs and samples; one run per distinct timestamp, unless
    `start_run` begins another at a timestamp already used (two collections in one second). Runs
    cover `window_seconds` each (the collection interval when they ran)."""

    conn: Connection
    window_seconds: int = 300
    namespaces: str | None = None  # the runs' scope (comma-separated); None: every namespace
    _runs: dict[int, int] = field(default_factory=dict)
    _pods: dict[tuple[int, str], int] = field(default_factory=dict)
    _spans: dict[tuple[int, int], tuple[int, tuple]] = field(default_factory=dict)  # newest: (id, state)

    def container(self, namespace: str, kind: str, workload: str, container: str) -> int:
        self.conn.execute("INSERT OR IGNORE INTO workloads (namespace, kind, name) VALUES (?, ?, ?)",
                          (namespace, kind, workload))
        workload_id = self.conn.execute("SELECT id FROM workloads WHERE namespace = ? AND kind = ? AND name = ?",
                                        (namespace, kind, workload)).fetchone()[0]
        self.conn.execute("INSERT OR IGNORE INTO containers (workload_id, name) VALUES (?, ?)",
                          (workload_id, container))
        return self.conn.execute("SELECT id FROM containers WHERE workload_id = ? AND name = ?",
                                 (workload_id, container)).fetchone()[0]

    def add(self, container_id: int, ts: int, sample: Sample) -> None:
        run_id = self._run(ts)
        span_id = self._span(run_id, self._pod(container_id, sample.pod), container_id, sample)
        s = sample
        self.conn.execute(
            "INSERT INTO samples (run_id, span_id, cpu_usage_avg_millicores, cpu_usage_max_millicores,"
            " memory_working_set_avg_bytes, memory_working_set_max_bytes, cpu_throttled_ratio, restart_count,"
            " last_termination_reason, oom_events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, span_id, s.cpu_usage_avg_millicores, s.cpu_usage_max_millicores, s.memory_working_set_avg_bytes,
             s.memory_working_set_max_bytes, s.cpu_throttled_ratio, s.restart_count, s.last_termination_reason,
             s.oom_events),
        )

    def start_run(self, ts: int) -> int:
        """A new run at `ts`: the samples added at `ts` from now on are its."""
        self._runs[ts] = self.conn.execute(
            "INSERT INTO runs (trigger, started_at, finished_at, status, window_seconds, namespaces)"
            " VALUES ('cli', ?, ?, 'ok', ?, ?) RETURNING id",
            (ts, ts + 1, self.window_seconds, self.namespaces)).fetchone()[0]
        return self._runs[ts]

    def metadata(self, namespace: str, kind: str, workload: str, annotations: dict[str, str] | None = None,
                 group_label: str | None = None, group_value: str | None = None, sidecars: tuple[str, ...] = ()
                 ) -> None:
        """A workload's policy annotations, group label value and native sidecars, as a collection stores them."""
        import json

        self.conn.execute(
            "INSERT INTO workload_metadata (namespace, kind, name, annotations, group_label, group_value, sidecars,"
            " run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (namespace, kind, name) DO UPDATE SET"
            " annotations = excluded.annotations, group_label = excluded.group_label,"
            " group_value = excluded.group_value, sidecars = excluded.sidecars",
            (namespace, kind, workload, json.dumps(annotations or {}), group_label, group_value,
             json.dumps(list(sidecars))))

    def hpa(self, ts: int, namespace: str, name: str, target: tuple[str, str], max_replicas: int,
            current_replicas: int, metrics: str = '[{"type": "Resource", "resource": "cpu", "target_type":'
                                                  ' "Utilization", "target_utilization_percent": 70}]') -> None:
        """An HPA on `target` (kind, name) as the run at `ts` saw it (min 1 replica); `metrics` as stored (JSON)."""
        run_id = self._run(ts)
        self.conn.execute("INSERT INTO hpas (namespace, name) VALUES (?, ?) ON CONFLICT (namespace, name) DO NOTHING",
                          (namespace, name))
        hpa_id = self.conn.execute("SELECT id FROM hpas WHERE namespace = ? AND name = ?",
                                   (namespace, name)).fetchone()[0]
        self.conn.execute("INSERT INTO hpa_specs (hpa_id, target_kind, target_name, min_replicas, max_replicas,"
                          " metrics) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING",
                          (hpa_id, *target, max_replicas, metrics))
        spec_id = self.conn.execute("SELECT id FROM hpa_specs WHERE hpa_id = ? AND target_kind = ? AND target_name = ?"
                                    " AND max_replicas = ? AND metrics = ?",
                                    (hpa_id, *target, max_replicas, metrics)).fetchone()[0]
        self.conn.execute("INSERT INTO hpa_samples VALUES (?, ?, ?, ?, ?)",
                          (run_id, hpa_id, spec_id, current_replicas, current_replicas))

    def failed_run(self, ts: int) -> None:
        """A run at `ts` that stored nothing (Kubernetes refused it)."""
        self.conn.execute("INSERT INTO runs (trigger, started_at, finished_at, status, window_seconds, error)"
                          " VALUES ('cli', ?, ?, 'failed', ?, 'pods is forbidden')", (ts, ts + 1, self.window_seconds))

    def _run(self, ts: int) -> int:
        return self._runs[ts] if ts in self._runs else self.start_run(ts)

    def _pod(self, container_id: int, pod: str) -> int:
        key = (container_id, pod)
        if key not in self._pods:
            workload_id = self.conn.execute("SELECT workload_id FROM containers WHERE id = ?",
                                            (container_id,)).fetchone()[0]
            self._pods[key] = self.conn.execute(
                "INSERT INTO pods (uid, workload_id, name) VALUES (?, ?, ?) RETURNING id",
                (f"uid-{container_id}-{pod}", workload_id, pod)).fetchone()[0]
        return self._pods[key]

    def _span(self, run_id: int, pod_id: int, container_id: int, s: Sample) -> int:
        """The pod's container's newest span when the sample has its phase, requests and limits (its runs
        then reach this one), else a new span."""
        state = (s.phase, s.cpu_request_millicores, s.cpu_limit_millicores, s.memory_request_bytes,
                 s.memory_limit_bytes)
        newest = self._spans.get((pod_id, container_id))
        if newest is not None and newest[1] == state:
            self.conn.execute("UPDATE container_spans SET first_run_id = MIN(first_run_id, ?),"
                              " last_run_id = MAX(last_run_id, ?) WHERE id = ?", (run_id, run_id, newest[0]))
            return newest[0]
        span_id = self.conn.execute(
            "INSERT INTO container_spans (pod_id, container_id, first_run_id, last_run_id, phase,"
            " cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (pod_id, container_id, run_id, run_id, *state)).fetchone()[0]
        self._spans[(pod_id, container_id)] = (span_id, state)
        return span_id


NAMESPACES = ("shop", "payments", "batch")


def random_history(history: History, now: int, hours: int, seed: int = 3, every_phase: bool = True,
                   interval_seconds: int = 300) -> None:
    """A few workloads with 1-3 pods over `hours` up to `now`, one sample per `interval_seconds` per pod,
    with what real clusters have: missing usage, a request change, a throttled and an OOM-killed
    container, and (when `every_phase`) Pending and Succeeded pods whose usage must not count."""
    import random

    rng = random.Random(seed)
    containers = []
    for n, namespace in enumerate(NAMESPACES):
        for name, kind, container, pods in ((f"api-{n}", "Deployment", "app", 3),
                                            (f"api-{n}", "Deployment", "proxy", 3),
                                            (f"db-{n}", "StatefulSet", "db", 1)):
            containers.append((history.container(namespace, kind, name, container), pods, rng.uniform(20, 900)))
    history.window_seconds = interval_seconds
    for step in reversed(range(hours * 3600 // interval_seconds)):  # oldest first, as collections store runs
        ts = now - step * interval_seconds
        for index, (container_id, pods, base) in enumerate(containers):
            for pod in range(pods):
                cpu = int(base * rng.uniform(0.2, 1.6))
                memory = int(base * MiB * rng.uniform(0.5, 1.0))
                sample = Sample(
                    cpu_usage_avg_millicores=cpu, cpu_usage_max_millicores=int(cpu * rng.uniform(1, 1.8)),
                    memory_working_set_avg_bytes=memory, memory_working_set_max_bytes=int(memory * 1.1),
                    # changed at half past an hour: that hour's rollup holds both requests
                    cpu_request_millicores=int(base) if now - ts <= hours * 1800 + 1800 else int(base * 2),
                    cpu_limit_millicores=None if index % 4 == 1 else int(base * 3),
                    memory_request_bytes=None if index == 8 else int(base * MiB),
                    memory_limit_bytes=int(base * MiB * 1.05), pod=f"pod-{pod}",
                    cpu_throttled_ratio=0.3 if index == 2 and step % 50 == 0 else 0.01,
                    restart_count=2 if index == 5 and step < 30 else 0,
                    last_termination_reason="OOMKilled" if index == 5 and step < 30 else None,
                )
                if rng.random() < 0.05:  # Prometheus had no series for this container
                    sample.cpu_usage_avg_millicores = sample.cpu_usage_max_millicores = None
                    sample.memory_working_set_avg_bytes = sample.memory_working_set_max_bytes = None
                if every_phase and pod == 2 and step % 40 < 4:
                    sample.phase = "Pending" if step % 2 else "Succeeded"  # Succeeded keeps its last usage
                    if sample.phase == "Pending":
                        sample.cpu_usage_avg_millicores = sample.memory_working_set_avg_bytes = None
                history.add(container_id, ts, sample)


def covered_seconds(conn: Connection, start: int, end: int) -> int:
    """The seconds the successful runs started in [start, end) cover: what averages over time divide by."""
    return conn.execute("SELECT COALESCE(SUM(window_seconds), 0) FROM runs WHERE status IN ('ok', 'partial')"
                        " AND started_at >= ? AND started_at < ?", (start, end)).fetchone()[0]


def reference_report(conn: Connection, start: int, end: int) -> dict[tuple[str, str, str], dict]:
    """The report's per-container figures computed independently, in plain Python over the raw rows.

    Each sample stands for the window its run covers (runs.window_seconds): averages over time are
    sums of value x window over the seconds the window's runs covered, averages per pod are
    weighted by the same windows."""
    import math

    covered = covered_seconds(conn, start, end)
    rows = conn.execute(  # a sample's time is its run's start in whole seconds
        "SELECT w.namespace, w.name, c.name, CAST(r.started_at AS INTEGER) AS ts, cs.phase, cs.cpu_request_millicores,"
        " cs.cpu_limit_millicores, cs.memory_request_bytes, cs.memory_limit_bytes, s.cpu_usage_avg_millicores,"
        " s.cpu_usage_max_millicores, s.memory_working_set_avg_bytes, s.memory_working_set_max_bytes,"
        " s.cpu_throttled_ratio, s.last_termination_reason, r.window_seconds FROM samples s"
        " JOIN container_spans cs ON cs.id = s.span_id JOIN containers c ON c.id = cs.container_id"
        " JOIN workloads w ON w.id = c.workload_id JOIN runs r ON r.id = s.run_id"
        " WHERE CAST(r.started_at AS INTEGER) >= ? AND CAST(r.started_at AS INTEGER) < ? ORDER BY ts", (start, end))
    grouped: dict[tuple[str, str, str], list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row[:3], []).append(row[3:])
    result = {}
    for key, samples in grouped.items():
        running = [s for s in samples if s[1] == "Running"]
        cpu = [s for s in running if s[6] is not None]
        memory = [s for s in running if s[8] is not None]
        cpu_values = sorted(s[6] for s in cpu)
        newest = samples[-1]
        cpu_seconds, memory_seconds = sum(s[12] for s in cpu), sum(s[12] for s in memory)
        requested_cpu = sum((s[2] or 0) * s[12] for s in cpu) / covered
        used_cpu = sum(s[6] * s[12] for s in cpu) / covered
        requested_memory = sum((s[4] or 0) * s[12] for s in memory) / covered
        used_memory = sum(s[8] * s[12] for s in memory) / covered
        result[key] = {
            "cpu_samples": len(cpu), "memory_samples": len(memory),
            "cpu_request_millicores": newest[2], "cpu_limit_millicores": newest[3],
            "memory_request_bytes": newest[4], "memory_limit_bytes": newest[5],
            "pods_avg": cpu_seconds / covered if cpu else None,
            "cpu_requested_avg_millicores": requested_cpu, "cpu_used_avg_millicores": used_cpu,
            "memory_requested_avg_bytes": requested_memory, "memory_used_avg_bytes": used_memory,
            "cpu_usage_avg_millicores": sum(s[6] * s[12] for s in cpu) / cpu_seconds if cpu else None,
            "cpu_usage_p95_millicores": cpu_values[math.ceil(0.95 * len(cpu_values)) - 1] if cpu_values else None,
            "cpu_values": cpu_values,
            "cpu_usage_max_millicores": max((s[7] for s in running if s[7] is not None), default=None),
            "memory_working_set_avg_bytes": sum(s[8] * s[12] for s in memory) / memory_seconds if memory else None,
            "memory_working_set_max_bytes": max((s[9] for s in running if s[9] is not None), default=None),
            "cpu_idle_millicores": max(0.0, requested_cpu - used_cpu) if cpu else None,
            "memory_idle_bytes": max(0.0, requested_memory - used_memory) if memory else None,
            "cpu_throttled_ratio_max": max((s[10] for s in running if s[10] is not None), default=None),
            "oom_killed": any(s[11] == "OOMKilled" for s in samples),
            "first_ts": samples[0][0], "last_ts": newest[0],
        }
    return result


def reference_recommendation(figures: dict, gone: bool = False, excluded: bool = False) -> dict:
    """What the report should recommend and say it saves for one container of `reference_report`, computed
    independently from the rules as the README states them, with the default settings: p95 for CPU, peak +
    15 % in whole MiB for memory (the VPA's OOM bump from the limit when OOM-killed), floors 10m and 16Mi,
    12 samples at least, keep within 10 %, confidence min(1, days / 7, samples / 2016), OpenCost's prices
    over 730 hours; gone and excluded containers save nothing in the totals."""
    import math

    def action(current: int | None, value: int | None, noise: bool = True) -> tuple[str, int | None]:
        if value is None:
            return "unknown", None
        if current is None:
            return "set", value
        if noise and abs(value - current) <= 0.1 * current:
            return "keep", current
        return ("raise" if value > current else "lower"), value

    cpu = figures["cpu_usage_p95_millicores"]
    cpu_value = max(10, math.ceil(cpu)) if cpu is not None and figures["cpu_samples"] >= 12 else None
    peak, limit = figures["memory_working_set_max_bytes"], figures["memory_limit_bytes"]
    memory_value = None
    if peak is not None and figures["memory_samples"] >= 12:
        memory_value = max(16 * MiB, math.ceil(peak * 1.15 / MiB) * MiB)
    if figures["oom_killed"] and limit is not None:
        bump = math.ceil(max(limit * 1.2, limit + 100 * MiB) / MiB) * MiB
        memory_value = max(bump, memory_value or 0)
    cpu_action, cpu_recommended = action(figures["cpu_request_millicores"], cpu_value)
    memory_action, memory_recommended = action(figures["memory_request_bytes"], memory_value,
                                               noise=not figures["oom_killed"])
    pods = figures["pods_avg"] or 0.0
    month = 730

    def per_month(millicores: float, size: float) -> float:
        return (millicores / 1000 * 0.031611 + size / 1024**3 * 0.004549) * month

    saved = [0.0, 0.0]
    added = [0.0, 0.0]
    for index, (act, current, recommended) in enumerate((
            (cpu_action, figures["cpu_request_millicores"], cpu_recommended),
            (memory_action, figures["memory_request_bytes"], memory_recommended))):
        if act == "lower":
            saved[index] = (current - recommended) * pods
        elif act == "raise":
            added[index] = (recommended - current) * pods
        elif act == "set":
            added[index] = recommended * pods
    span_days = (figures["last_ts"] - figures["first_ts"]) / 86_400
    samples = min(figures["cpu_samples"], figures["memory_samples"])
    return {
        "recommended_cpu_request_millicores": cpu_recommended, "recommended_memory_request_bytes": memory_recommended,
        "cpu_request_action": cpu_action, "memory_request_action": memory_action,
        "confidence": round(max(0.0, min(1.0, span_days / 7, samples / 2016)), 2),
        "requested_per_month": per_month(figures["cpu_requested_avg_millicores"],
                                         figures["memory_requested_avg_bytes"]),
        "idle_per_month": per_month(figures["cpu_idle_millicores"] or 0, figures["memory_idle_bytes"] or 0),
        "savings_per_month": per_month(*saved), "cost_to_fix_risk_per_month": per_month(*added),
        "counted": not (gone or excluded),
    }
