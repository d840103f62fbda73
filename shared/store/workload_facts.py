"""What a run saw about workloads besides their containers: policy annotations, group label, and HPAs.

- `workload_metadata`: a workload's pods' `k8s-monitor.io/` annotations, the value of the label
  reports group by (REPORT_GROUP_BY_LABEL) and its native sidecars (patches put them under
  initContainers), one row per workload, keyed by its name (not its id, which
  retention may free and a new workload reuse), written only when they change, kept after the
  workload is gone so its report still follows its policy;
- `hpas`, `hpa_specs` and `hpa_samples`: each HPA's declaration (target, bounds, metrics) once per
  distinct one, and its replicas as each run saw them, so the report can tell whether it sat at its
  maximum for most of a window; samples deleted with the raw samples, declarations when no sample
  names them any more;
- `hpa_listings`: per run, whether HPAs could be listed (and why not), so a report says when it
  could not allow for them rather than assume there were none.

The SQL is plain (INSERT ... ON CONFLICT, JSON kept as text) so another backend can run it as is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from shared.sources.hpas import HpaMetric, HpaRecord
from shared.store.dialect import Connection
from shared.store.run_status import SUCCESSFUL_RUN

if TYPE_CHECKING:
    from shared.sources.inventory import Inventory

WorkloadKey = tuple[str, str, str]  # namespace, kind, name

_METRICS = msgspec.json.Decoder(list[HpaMetric])


@dataclass(frozen=True)
class WorkloadMetadata:
    """A workload's pods' monitor annotations and group label value, as the newest run that changed them saw."""

    annotations: dict[str, str]
    group_label: str | None  # the label `group_value` is of
    group_value: str | None
    sidecars: tuple[str, ...] = ()  # containers declared under spec.initContainers (native sidecars)


def store_workload_facts(conn: Connection, run_id: int, inventory: Inventory, group_label: str | None) -> None:
    """Record the run's workload metadata (what changed) and HPAs, in the caller's transaction."""
    seen: dict[WorkloadKey, tuple[str, str | None, str | None, str]] = {}
    for pod in inventory.pods:  # during a rollout the pods may differ: the last one listed wins
        annotations = json.dumps(pod.annotations or {}, sort_keys=True)
        seen[(pod.namespace, pod.workload_kind, pod.workload_name)] = (
            annotations, group_label, pod.group, json.dumps(pod.sidecars or []))
    stored = _stored_metadata(conn, seen)
    conn.executemany(
        "INSERT INTO workload_metadata (namespace, kind, name, annotations, group_label, group_value, sidecars,"
        " run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, kind, name) DO UPDATE SET"
        " annotations = excluded.annotations, group_label = excluded.group_label,"
        " group_value = excluded.group_value, sidecars = excluded.sidecars, run_id = excluded.run_id",
        [(*key, *values, run_id) for key, values in seen.items() if stored.get(key) != values])
    conn.execute("INSERT INTO hpa_listings (run_id, error) VALUES (?, ?)", (run_id, inventory.hpas_error))
    if inventory.hpas:
        conn.executemany("INSERT INTO hpas (namespace, name) VALUES (?, ?) ON CONFLICT (namespace, name) DO NOTHING",
                         [(h.namespace, h.name) for h in inventory.hpas])
        ids = _hpa_ids(conn, inventory.hpas)
        specs = [(h, (ids[(h.namespace, h.name)], h.target_kind, h.target_name, h.min_replicas, h.max_replicas,
                      msgspec.json.encode(h.metrics).decode())) for h in inventory.hpas]
        declared = {spec for _, spec in specs}
        conn.executemany(
            "INSERT INTO hpa_specs (hpa_id, target_kind, target_name, min_replicas, max_replicas, metrics)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hpa_id, target_kind, target_name, min_replicas, max_replicas,"
            " metrics) DO NOTHING", sorted(declared))
        spec_ids = _hpa_spec_ids(conn, declared)
        conn.executemany(
            "INSERT INTO hpa_samples (run_id, hpa_id, spec_id, current_replicas, desired_replicas)"
            " VALUES (?, ?, ?, ?, ?)",
            [(run_id, spec[0], spec_ids[spec], h.current_replicas, h.desired_replicas) for h, spec in specs])


def _stored_metadata(conn: Connection, keys: Iterable[WorkloadKey]) -> dict[WorkloadKey, tuple]:
    namespaces = sorted({key[0] for key in keys})
    rows = conn.execute(
        "SELECT namespace, kind, name, annotations, group_label, group_value, sidecars FROM workload_metadata"
        " WHERE namespace IN (SELECT value FROM json_each(?))", (json.dumps(namespaces),))
    return {(ns, kind, name): tuple(values) for ns, kind, name, *values in rows}


def _hpa_ids(conn: Connection, hpas: list[HpaRecord]) -> dict[tuple[str, str], int]:
    wanted = {(h.namespace, h.name) for h in hpas}
    namespaces = sorted({namespace for namespace, _ in wanted})
    rows = conn.execute("SELECT id, namespace, name FROM hpas WHERE namespace IN (SELECT value FROM json_each(?))",
                        (json.dumps(namespaces),))
    return {(ns, name): hpa_id for hpa_id, ns, name in rows if (ns, name) in wanted}


def _hpa_spec_ids(conn: Connection, specs: set[tuple]) -> dict[tuple, int]:
    hpa_ids = sorted({spec[0] for spec in specs})
    rows = conn.execute("SELECT id, hpa_id, target_kind, target_name, min_replicas, max_replicas, metrics"
                        " FROM hpa_specs WHERE hpa_id IN (SELECT value FROM json_each(?))", (json.dumps(hpa_ids),))
    return {tuple(spec): spec_id for spec_id, *spec in rows if tuple(spec) in specs}


def read_workload_metadata(conn: Connection) -> dict[WorkloadKey, WorkloadMetadata]:
    """Every workload's stored metadata (a row per workload ever seen with pods)."""
    decode = msgspec.json.decode  # a report reads every workload's: several times json.loads's speed
    return {(ns, kind, name): WorkloadMetadata(decode(annotations), label, value, tuple(decode(sidecars)))
            for ns, kind, name, annotations, label, value, sidecars in conn.execute(
                "SELECT namespace, kind, name, annotations, group_label, group_value, sidecars FROM workload_metadata")}


class HpaWindow(HpaRecord, gc=False):
    """An HPA over a report window: as the newest run saw it, and in how many runs it sat at its maximum."""

    runs: int  # the window's runs that saw it
    runs_at_max: int  # of those, the runs where its current replicas equalled its maximum


def window_hpas(conn: Connection, start: float, end: float) -> dict[WorkloadKey, list[HpaWindow]]:
    """The HPAs seen by the successful runs started in [start, end), by the workload they scale (as the
    newest run saw their target)."""
    rows = conn.execute(
        "WITH seen AS (SELECT s.hpa_id, s.spec_id, s.current_replicas, s.desired_replicas,"
        "  ROW_NUMBER() OVER (PARTITION BY s.hpa_id ORDER BY s.run_id DESC) AS newest,"
        "  COUNT(*) OVER (PARTITION BY s.hpa_id) AS runs,"
        "  SUM(CASE WHEN s.current_replicas >= p.max_replicas THEN 1 ELSE 0 END) OVER (PARTITION BY s.hpa_id)"
        "  AS runs_at_max"
        " FROM hpa_samples s JOIN hpa_specs p ON p.id = s.spec_id JOIN runs r ON r.id = s.run_id"
        f" WHERE r.{SUCCESSFUL_RUN} AND r.started_at >= ? AND r.started_at < ?)"
        " SELECT h.namespace, h.name, p.target_kind, p.target_name, p.min_replicas, p.max_replicas,"
        " seen.current_replicas, seen.desired_replicas, p.metrics, seen.runs, seen.runs_at_max"
        " FROM seen JOIN hpa_specs p ON p.id = seen.spec_id JOIN hpas h ON h.id = seen.hpa_id"
        " WHERE seen.newest = 1 ORDER BY h.namespace, h.name",
        (start, end))
    found: dict[WorkloadKey, list[HpaWindow]] = {}
    for ns, name, kind, target, low, high, current, desired, metrics, runs, at_max in rows:
        hpa = HpaWindow(ns, name, kind, target, low, high, current, desired, _METRICS.decode(metrics), runs, at_max)
        found.setdefault((ns, kind, target), []).append(hpa)
    return found


def hpa_listing_error(conn: Connection, start: float, end: float) -> str | None:
    """Why the newest successful run of [start, end) could not list HPAs; None when it could (or none ran)."""
    row = conn.execute(
        "SELECT l.error FROM hpa_listings l JOIN runs r ON r.id = l.run_id"
        f" WHERE r.{SUCCESSFUL_RUN} AND r.started_at >= ? AND r.started_at < ?"
        " ORDER BY r.id DESC LIMIT 1", (start, end)).fetchone()
    return row[0] if row else None
