"""Synthetic collection runs written straight through shared/store/runs.py, for the benchmarks.

Backup, restore and retention benchmarks need days of history quickly; the HTTP simulator would
spend its time serving JSON. These records have the shape `read_inventory` and `collect_usage`
produce. A pod's `generation` is part of its uid and name, so bumping it replaces the pods like a
rollout does. Tests keep their own copy (tests/support/synthetic_history.py): tests and benchmarks do not
import each other.
"""

from __future__ import annotations

import random
import sqlite3

from shared.sources.inventory import ContainerRecord, Inventory, NodeRecord, PodRecord
from shared.sources.usage import ContainerKey, ContainerUsage
from shared.store.runs import RunRecord, store_collection

MEBIBYTE = 1024 * 1024


def synthetic_inventory(pods: int, generation: int = 0, nodes: int = 3, pods_per_workload: int = 4) -> Inventory:
    """`pods` pods of Deployments (`pods_per_workload` replicas each) with one or two containers."""
    node_records = [NodeRecord(f"node-{n}", 4000, 3800, 16 * 1024 * MEBIBYTE, 15 * 1024 * MEBIBYTE)
                    for n in range(nodes)]
    pod_records = []
    for number in range(pods):
        workload = number // pods_per_workload
        containers = [ContainerRecord("app", 100 + 50 * (workload % 4), 500, 128 * MEBIBYTE * (1 + workload % 3),
                                      512 * MEBIBYTE, workload % 7, None)]
        if workload % 2 == 0:
            containers.append(ContainerRecord("sidecar", 10, 100, 32 * MEBIBYTE, 64 * MEBIBYTE, 0, None))
        pod_records.append(PodRecord(
            namespace=f"team-{workload % 5}", name=f"app-{workload}-g{generation}-{number}",
            uid=f"uid-{generation}-{number}", node=f"node-{number % nodes}", phase="Running",
            qos_class="Burstable", owner_kind="ReplicaSet", owner_name=f"app-{workload}-g{generation}",
            containers=containers, workload_kind="Deployment", workload_name=f"app-{workload}",
        ))
    return Inventory(pod_records, node_records)


def synthetic_usage(inventory: Inventory, rng: random.Random) -> dict[ContainerKey, ContainerUsage]:
    """Plausible usage for every container: CPU around a third of the request, memory below its limit."""
    usage = {}
    for pod in inventory.pods:
        for container in pod.containers:
            cpu = rng.uniform(0, (container.cpu_request_millicores or 100) * 0.7)
            memory = rng.uniform(0.3, 0.8) * (container.memory_limit_bytes or 256 * MEBIBYTE)
            usage[(pod.namespace, pod.name, container.name)] = ContainerUsage(
                cpu, cpu * rng.uniform(1, 2), memory, memory * 1.05, rng.uniform(0, 0.1), 0.0)
    return usage


def store_synthetic_run(conn: sqlite3.Connection, inventory: Inventory, at: float, rng: random.Random) -> int:
    """Store one `ok` run at time `at` with usage for every container; its run id."""
    run = RunRecord(trigger="schedule", started_at=at, finished_at=at + 1.0, status="ok", pods=len(inventory.pods),
                    containers=inventory.container_count, nodes=len(inventory.nodes), window_seconds=300)
    return store_collection(conn, run, inventory, synthetic_usage(inventory, rng))
