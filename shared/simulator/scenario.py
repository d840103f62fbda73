"""A deterministic simulated cluster: pods, nodes and owners, sized by pod count and seeded.

The same (pod_count, seed) always gives the same cluster, so tests and benchmarks can state exact
expectations. The mix stays in proportion at every size and every category the monitor must
recognise is present from 20 pods up: workloads of each kind (Deployments via ReplicaSets,
StatefulSets, DaemonSets, CronJobs via Jobs, plain Jobs, bare pods), and containers that are
over-provisioned, under-provisioned, OOMKilled, CPU-throttled, crash-looping, near their memory
limit, without limits, without requests (BestEffort) or Guaranteed. Some workloads are scaled by
HPAs (one at its maximum) and some carry k8s-monitor.io/ rightsizing annotations (one unreadable);
every pod has a `team` label.
"""

from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass, field, replace

DEFAULT_EPOCH_SECONDS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MIN_PODS = 10
STEP_SECONDS = 60

_GiB = 1 << 30
_MiB = 1 << 20
_CPU_REQUESTS_MILLICORES = (50, 100, 100, 200, 250, 250, 500, 500, 750, 1000, 1500, 2000)
_MEMORY_REQUESTS_BYTES = (
    64 * _MiB, 128 * _MiB, 128 * _MiB, 256 * _MiB, 256 * _MiB, 512 * _MiB, 512 * _MiB,
    768 * _MiB, _GiB, 3 * _GiB // 2, 2 * _GiB, 256_000_000, 500_000_000, 1_000_000_000,
)
# Share of container slots (containers of workloads with running pods) per problem category;
# the rest are "normal". Guaranteed and BestEffort are whole-pod categories, shared by workload.
_CONTAINER_CATEGORY_SHARES = {
    "over_provisioned": 0.20,
    "under_provisioned": 0.08,
    "no_limits": 0.12,
    "throttled": 0.06,
    "oom_killed": 0.04,
    "near_memory_limit": 0.04,
    "restarting": 0.03,
}
_POD_CATEGORY_SHARES = {"guaranteed": 0.06, "best_effort": 0.04}
_NAMESPACES = ("default", "kube-system", "monitoring", "shop", "payments", "data", "ingress-nginx", "batch")
_NAMES = {
    "Deployment": ("api", "web", "frontend", "checkout", "cart", "catalog", "auth", "search", "gateway",
                   "orders", "inventory", "billing", "profile", "reviews", "shipping", "email-worker"),
    "StatefulSet": ("postgres", "redis", "kafka", "zookeeper", "elasticsearch", "rabbitmq", "mongodb"),
    "CronJob": ("nightly-report", "db-backup", "cleanup", "sync-catalog", "rotate-logs"),
    "Job": ("migrate-schema", "reindex", "seed-data", "import-users"),
    "Pod": ("debug-shell", "netshoot", "toolbox", "curl-test"),
    "ReplicaSet": ("legacy-proxy",),
}
_SIDECARS = (
    ("istio-proxy", "docker.io/istio/proxyv2:1.22.3"),
    ("log-shipper", "cr.fluentbit.io/fluent/fluent-bit:3.1.4"),
    ("metrics-exporter", "quay.io/prometheus/statsd-exporter:v0.27.1"),
)
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class SimContainer:
    """One container's spec (requests/limits as served, after API defaulting) and its usage."""

    name: str
    image: str
    cpu_request_millicores: int | None
    cpu_limit_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None
    cpu_usage_millicores: float = 0.0  # mean over time
    memory_working_set_bytes: float = 0.0  # mean over time
    throttled_ratio: float = 0.0  # share of CFS periods throttled, 0..1
    restart_count: int = 0  # at the scenario epoch
    last_termination_reason: str | None = None
    oom_events: int = 0  # at the scenario epoch
    restarts_per_hour: float = 0.0  # crash-looping containers keep restarting after the epoch


@dataclass(frozen=True, slots=True)
class SimPod:
    """One pod, its direct owner and the top workload the collector is expected to name."""

    namespace: str
    name: str
    uid: str
    node: str | None  # None while Pending and unscheduled
    owner_kind: str | None
    owner_name: str | None
    workload_kind: str
    workload_name: str
    phase: str
    qos_class: str
    labels: dict[str, str]
    containers: tuple[SimContainer, ...]
    init_containers: tuple[SimContainer, ...] = ()
    created_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SimNode:
    """One node's capacity and what the kubelet leaves allocatable to pods."""

    name: str
    cpu_capacity_millicores: int
    cpu_allocatable_millicores: int
    memory_capacity_bytes: int
    memory_allocatable_bytes: int


@dataclass(frozen=True, slots=True)
class SimHpaMetric:
    """One metric of an HPA: a Resource or ContainerResource metric on cpu/memory, or another type."""

    type: str  # Resource, ContainerResource, Pods, Object or External
    resource: str | None = None  # cpu or memory
    container: str | None = None  # of a ContainerResource metric
    utilization_percent: int | None = None  # a Utilization target; else an AverageValue one
    average_value: str | None = None


@dataclass(frozen=True, slots=True)
class SimHpa:
    """An autoscaling/v2 HorizontalPodAutoscaler scaling a Deployment or StatefulSet of the scenario."""

    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    metrics: tuple[SimHpaMetric, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """The whole simulated cluster. `epoch_seconds` is when restart counts start rising."""

    seed: int
    epoch_seconds: float
    pods: tuple[SimPod, ...]
    nodes: tuple[SimNode, ...]
    namespaces: tuple[str, ...]
    replicasets: dict[tuple[str, str], tuple[str, str] | None]  # (ns, name) -> owner (kind, name)
    jobs: dict[tuple[str, str], tuple[str, str] | None]
    denied: frozenset[str] = frozenset()  # resources the service account may not touch (403)
    unserved: frozenset[str] = frozenset()  # resources this API server does not serve (404), as an older release
    hpas: tuple[SimHpa, ...] = ()
    # (namespace, workload) -> the k8s-monitor.io/ annotations on its pods (rightsizing policies)
    policies: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def running_pods(self) -> tuple[SimPod, ...]:
        """Pods whose containers run, hence have usage series in Prometheus."""
        return tuple(pod for pod in self.pods if pod.phase == "Running")

    def healed(self, at_seconds: float | None = None) -> Scenario:
        """This cluster after the operators fixed it: no OOM kills, no throttling, no crash loops,
        memory well below limits. Restart and OOM counts freeze at their value at `at_seconds`
        (at the epoch when None), so counters never go backwards for a collector watching.
        """
        from shared.simulator.timeseries import oom_events_total_at, restart_count_at  # it imports this module

        at = self.epoch_seconds if at_seconds is None else at_seconds
        pods = tuple(
            replace(pod, containers=tuple(
                _healed_container(c, restart_count_at(self, pod, c, at), int(oom_events_total_at(self, pod, c, at)))
                for c in pod.containers
            ))
            for pod in self.pods
        )
        return replace(self, pods=pods)


def _healed_container(container: SimContainer, restart_count: int, oom_events: int) -> SimContainer:
    cpu = container.cpu_usage_millicores
    if container.cpu_limit_millicores:
        cpu = min(cpu, 0.5 * container.cpu_limit_millicores)
    memory = container.memory_working_set_bytes
    if container.memory_limit_bytes:
        memory = min(memory, 0.5 * container.memory_limit_bytes)
    return replace(
        container, cpu_usage_millicores=cpu, memory_working_set_bytes=memory, throttled_ratio=0.0,
        restart_count=restart_count, last_termination_reason=None, oom_events=oom_events,
        restarts_per_hour=0.0,
    )


def object_uid(seed: int, kind: str, namespace: str, name: str) -> str:
    """A stable uid for objects the scenario names but does not store (owners, nodes, namespaces)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}/{kind}/{namespace}/{name}"))


def qos_class(containers: tuple[SimContainer, ...]) -> str:
    """The pod QoS class as the kubelet computes it over containers and init containers."""
    amounts = [
        (c.cpu_request_millicores, c.cpu_limit_millicores, c.memory_request_bytes, c.memory_limit_bytes)
        for c in containers
    ]
    if all(value is None for amount in amounts for value in amount):
        return "BestEffort"
    guaranteed = all(
        cpu_limit is not None and memory_limit is not None and cpu_request == cpu_limit
        and memory_request == memory_limit
        for cpu_request, cpu_limit, memory_request, memory_limit in amounts
    )
    return "Guaranteed" if guaranteed else "Burstable"


# --- building ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """A container template shared by every replica of a workload."""

    name: str
    image: str
    category: str = "normal"
    cpu_request: int | None = None
    cpu_limit: int | None = None
    memory_request: int | None = None
    memory_limit: int | None = None


@dataclass(slots=True)
class _Workload:
    kind: str
    namespace: str
    name: str
    replicas: int
    containers: list[_Slot] = field(default_factory=list)
    init_containers: list[_Slot] = field(default_factory=list)
    pod_category: str | None = None
    active: bool = True  # has a running pod (CronJobs between runs do not)


def build_scenario(pod_count: int, seed: int = 42, epoch_seconds: float = DEFAULT_EPOCH_SECONDS) -> Scenario:
    """A cluster of exactly `pod_count` pods, the same for the same arguments."""
    if pod_count < MIN_PODS:
        raise ValueError(f"pod_count must be at least {MIN_PODS} to hold every workload kind, got {pod_count}")
    rng = random.Random(seed)
    nodes = _nodes(rng, max(3, pod_count // 30 + 1))
    namespaces = _NAMESPACES + tuple(f"team-{i:03d}" for i in range(max(0, pod_count // 50 - len(_NAMESPACES))))
    workloads = _plan_workloads(rng, pod_count, len(nodes), namespaces)
    _assign_categories(rng, workloads)
    builder = _PodBuilder(rng, seed, epoch_seconds, nodes)
    for workload in workloads:
        builder.add(workload)
    builder.mark_pending(max(1, round(0.015 * pod_count)))
    pods = tuple(builder.pods)
    return Scenario(
        seed=seed, epoch_seconds=epoch_seconds, pods=pods, nodes=nodes,
        namespaces=tuple(sorted(namespaces)), replicasets=builder.replicasets, jobs=builder.jobs,
        hpas=_hpas(pods), policies=_policies(pods),
    )


def team_of(namespace: str) -> str:
    """The `team` label of a namespace's pods: what REPORT_GROUP_BY_LABEL=team groups by."""
    return _TEAMS.get(namespace, "platform" if namespace.startswith("team-") else "operations")


_TEAMS = {"shop": "storefront", "payments": "payments", "data": "data", "batch": "data", "default": "storefront"}


def _scaled_workloads(pods: tuple[SimPod, ...]) -> list[tuple[str, str, str, int, SimPod]]:
    """(namespace, kind, name, running replicas, a pod) of the Deployments and StatefulSets with running pods,
    outside kube-system, in a stable order."""
    found: dict[tuple[str, str, str], list[SimPod]] = {}
    for pod in pods:
        if pod.workload_kind in ("Deployment", "StatefulSet") and pod.namespace != "kube-system":
            found.setdefault((pod.namespace, pod.workload_kind, pod.workload_name), []).append(pod)
    return [(ns, kind, name, sum(p.phase == "Running" for p in group), group[0])
            for (ns, kind, name), group in sorted(found.items()) if any(p.phase == "Running" for p in group)]


def _hpas(pods: tuple[SimPod, ...]) -> tuple[SimHpa, ...]:
    """HPAs on about one Deployment or StatefulSet in four, derived from the pods (not the scenario's random
    stream, so adding them changed no other figure): the first scales on CPU utilisation at its maximum,
    then on memory utilisation, on one container's CPU, and on an external queue length."""
    hpas: list[SimHpa] = []
    for index, (ns, kind, name, replicas, pod) in enumerate(_scaled_workloads(pods)):
        if zlib.crc32(f"hpa/{ns}/{name}".encode()) % 4 and index:
            continue
        shape = len(hpas) % 4
        metric = (SimHpaMetric("Resource", "cpu", utilization_percent=70),
                  SimHpaMetric("Resource", "memory", utilization_percent=80),
                  SimHpaMetric("ContainerResource", "cpu", pod.containers[0].name, utilization_percent=60),
                  SimHpaMetric("External", average_value="30"))[shape]
        maximum = replicas if shape == 0 else replicas + 2 + len(hpas) % 3
        hpas.append(SimHpa(ns, name, kind, name, 1, max(1, maximum), replicas, (metric,)))
    return tuple(hpas)


def _policies(pods: tuple[SimPod, ...]) -> dict[tuple[str, str], dict[str, str]]:
    """Rightsizing annotations on a few workloads: a stricter percentile, a memory ceiling, one ignored,
    and one with a value that cannot be read (the report names it and uses the default)."""
    chosen = [(ns, name) for index, (ns, _, name, _, _) in enumerate(_scaled_workloads(pods))
              if index < 4 or zlib.crc32(f"policy/{ns}/{name}".encode()) % 5 == 0]
    annotations = ({"k8s-monitor.io/cpu-percentile": "99", "k8s-monitor.io/memory-headroom": "25%"},
                   {"k8s-monitor.io/max-memory": "1Gi", "k8s-monitor.io/cpu-limit-policy": "none"},
                   {"k8s-monitor.io/ignore": "true"},
                   {"k8s-monitor.io/memory-headroom": "plenty"})
    return {key: annotations[index % len(annotations)] for index, key in enumerate(chosen)}


def _nodes(rng: random.Random, count: int) -> tuple[SimNode, ...]:
    nodes = []
    for index in range(count):
        cores = 16 if index % 3 else 32
        memory_kib = cores * 4 * 1024 * 1024 - rng.randrange(400_000, 900_000)  # "65843436Ki"-style
        nodes.append(SimNode(
            name=f"node-{index + 1:03d}",
            cpu_capacity_millicores=cores * 1000,
            cpu_allocatable_millicores=cores * 1000 - 90,
            memory_capacity_bytes=memory_kib * 1024,
            memory_allocatable_bytes=(memory_kib - 1_782_000) * 1024,
        ))
    return tuple(nodes)


def _plan_workloads(
    rng: random.Random, pod_count: int, node_count: int, namespaces: tuple[str, ...],
) -> list[_Workload]:
    daemonsets = [("kube-system", "kube-proxy"), ("monitoring", "node-exporter")][: 1 if pod_count < 100 else 2]
    rest = pod_count - len(daemonsets) * node_count
    quota = {
        "Pod": max(1, round(0.03 * rest)),
        "Job": max(1, round(0.05 * rest)),
        "CronJob": max(2, round(0.08 * rest)),
        "StatefulSet": max(1, round(0.12 * rest)),
        "ReplicaSet": 1 if pod_count >= 50 else 0,
    }
    quota["Deployment"] = rest - sum(quota.values())
    workloads = [_Workload("DaemonSet", ns, name, node_count) for ns, name in daemonsets]
    workloads[0].containers = [
        _Slot(daemonsets[0][1], "registry.k8s.io/kube-proxy:v1.30.4", "no_limits", 100, None, 64 * _MiB, None),
    ]
    if len(workloads) > 1:
        workloads[1].containers = [
            _Slot("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", "guaranteed", 100, 100,
                  180 * _MiB, 180 * _MiB),
            _Slot("kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.18.1", "guaranteed", 10, 10,
                  20 * _MiB, 20 * _MiB),
        ]
    app_namespaces = [ns for ns in namespaces if ns != "kube-system"]
    rng.shuffle(app_namespaces)
    used: set[tuple[str, str]] = set()
    sizes = {"Deployment": (1, 1, 2, 2, 3, 3, 4, 6), "StatefulSet": (1, 2, 3), "CronJob": (2, 3)}
    for kind, pods_left in quota.items():
        index = 0
        while pods_left > 0:
            replicas = min(pods_left, rng.choice(sizes.get(kind, (1,))))
            if kind == "Deployment" and index == 0 and pods_left >= 2:
                namespace, base, replicas = "kube-system", "coredns", 2
            else:
                namespace = app_namespaces[len(workloads) % len(app_namespaces)]
                base = _NAMES[kind][index % len(_NAMES[kind])]
            name, suffix = base, 2
            while (namespace, name) in used:
                name, suffix = f"{base}-{suffix}", suffix + 1
            used.add((namespace, name))
            workload = _Workload(kind, namespace, name, replicas, active=kind != "CronJob" or index % 2 == 0)
            workload.containers = _container_slots(rng, namespace, name)
            if rng.random() < 0.2:
                workload.init_containers = [_Slot(rng.choice(("wait-for-deps", "init-migrations")), "busybox:1.36.1")]
            workloads.append(workload)
            pods_left -= replicas
            index += 1
    return workloads


def _container_slots(rng: random.Random, namespace: str, name: str) -> list[_Slot]:
    version = f"{rng.randrange(1, 4)}.{rng.randrange(0, 20)}.{rng.randrange(0, 10)}"
    slots = [_Slot(name, f"registry.example.com/{namespace}/{name}:{version}")]
    extra = rng.choices((0, 1, 2), weights=(60, 30, 10))[0]
    slots += [_Slot(sidecar, image) for sidecar, image in rng.sample(_SIDECARS, extra)]
    return slots


def _assign_categories(rng: random.Random, workloads: list[_Workload]) -> None:
    """Spread categories over workloads with running pods: each at least once, else by share."""
    candidates = [w for w in workloads if w.active and w.kind != "DaemonSet"]
    order = rng.sample(candidates, len(candidates))
    for category, share in _POD_CATEGORY_SHARES.items():
        count = max(1, round(share * len(candidates)))
        for workload in order[:count]:
            workload.pod_category = category
        order = order[count:]
    slots = [slot for w in order for slot in w.containers]
    while len(slots) <= len(_CONTAINER_CATEGORY_SHARES):  # tiny clusters: add sidecars until all fit
        workload = rng.choice(order)
        sidecar, image = _SIDECARS[len(workload.containers) % len(_SIDECARS)]
        workload.containers.append(_Slot(f"{sidecar}-{len(workload.containers)}", image))
        slots.append(workload.containers[-1])
    rng.shuffle(slots)
    start = 0
    for category, share in _CONTAINER_CATEGORY_SHARES.items():
        count = max(1, round(share * len(slots)))
        for slot in slots[start:start + count]:
            slot.category = category
        start += count
    for workload in workloads:
        for slot in workload.init_containers:
            slot.category = workload.pod_category or "normal"
        for slot in workload.containers + workload.init_containers:
            if workload.pod_category:
                slot.category = workload.pod_category
            if slot.cpu_request is None and slot.category != "best_effort":
                _size_slot(rng, slot, small=slot in workload.init_containers)


def _size_slot(rng: random.Random, slot: _Slot, small: bool) -> None:
    """Requests and limits for a category. Limits-only specs are stored as the API server
    defaults them: requests equal to limits."""
    cpu = rng.choice(_CPU_REQUESTS_MILLICORES[:5] if small else _CPU_REQUESTS_MILLICORES)
    memory = rng.choice(_MEMORY_REQUESTS_BYTES[:5] if small else _MEMORY_REQUESTS_BYTES)
    slot.cpu_request, slot.memory_request = cpu, memory
    slot.cpu_limit = rng.choice((None, 2 * cpu, 4 * cpu))
    slot.memory_limit = rng.choice((memory, 2 * memory))
    if slot.category == "guaranteed":
        slot.cpu_limit, slot.memory_limit = cpu, memory
    elif slot.category == "no_limits":
        slot.cpu_limit = slot.memory_limit = None
    elif slot.category == "throttled":
        slot.cpu_limit = rng.choice((cpu, 2 * cpu))
    elif slot.category == "under_provisioned":
        slot.cpu_limit, slot.memory_limit = rng.choice((None, 4 * cpu)), 2 * memory


def _usage(rng: random.Random, slot: _Slot) -> dict[str, object]:
    """Mean usage and history of one replica's container, drawn for its category."""
    if slot.category == "best_effort":
        return {"cpu_usage_millicores": rng.uniform(5, 200), "memory_working_set_bytes": rng.uniform(20, 300) * _MiB}
    cpu_request, memory_request = slot.cpu_request or 0, slot.memory_request or 0
    cpu, memory = cpu_request * rng.uniform(0.4, 0.8), memory_request * rng.uniform(0.4, 0.75)
    usage: dict[str, object] = {}
    if slot.cpu_limit and slot.category != "throttled":
        usage["throttled_ratio"] = rng.uniform(0.0, 0.03)
    if slot.category == "over_provisioned":
        cpu, memory = cpu_request * rng.uniform(0.03, 0.12), memory_request * rng.uniform(0.1, 0.25)
    elif slot.category == "under_provisioned":
        cpu, memory = cpu_request * rng.uniform(1.3, 2.5), memory_request * rng.uniform(1.2, 1.6)
    elif slot.category == "throttled":
        cpu = (slot.cpu_limit or 0) * rng.uniform(0.8, 0.95)
        usage["throttled_ratio"] = rng.uniform(0.4, 0.6)
    elif slot.category == "near_memory_limit":
        memory = (slot.memory_limit or 0) * rng.uniform(0.92, 0.96)
    elif slot.category == "oom_killed":
        memory = (slot.memory_limit or 0) * rng.uniform(0.75, 0.88)
        restarts = rng.randint(1, 20)
        usage.update(restart_count=restarts, oom_events=restarts, last_termination_reason="OOMKilled",
                     restarts_per_hour=1.0)
    elif slot.category == "restarting":
        usage.update(restart_count=rng.randint(3, 40), last_termination_reason="Error", restarts_per_hour=12.0)
    usage.update(cpu_usage_millicores=cpu, memory_working_set_bytes=memory)
    return usage


def _random_hash(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_HASH_ALPHABET) for _ in range(length))


class _PodBuilder:
    """Turns workload plans into pods and the ReplicaSets and Jobs that own them."""

    def __init__(self, rng: random.Random, seed: int, epoch_seconds: float, nodes: tuple[SimNode, ...]) -> None:
        self.rng, self.seed, self.epoch_seconds, self.nodes = rng, seed, epoch_seconds, nodes
        self.pods: list[SimPod] = []
        self.replicasets: dict[tuple[str, str], tuple[str, str] | None] = {}
        self.jobs: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._pending_candidates: list[int] = []

    def add(self, w: _Workload) -> None:
        rng, epoch = self.rng, self.epoch_seconds
        labels = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/instance": w.name, "team": team_of(w.namespace)}
        if w.kind in ("Deployment", "ReplicaSet"):
            template_hash = _random_hash(rng, 10)
            rs = f"{w.name}-{template_hash}"
            top = ("Deployment", w.name) if w.kind == "Deployment" else ("ReplicaSet", rs)
            self.replicasets[(w.namespace, rs)] = top if w.kind == "Deployment" else None
            if w.kind == "Deployment" and rng.random() < 0.3:  # rollout history: scaled-down old sets
                for _ in range(rng.randint(1, 2)):
                    self.replicasets[(w.namespace, f"{w.name}-{_random_hash(rng, 10)}")] = top
            created = epoch - rng.randrange(3600, 40 * 86400)
            for replica in range(w.replicas):
                if replica:
                    self._pending_candidates.append(len(self.pods))
                self._pod(w, f"{rs}-{_random_hash(rng, 5)}", ("ReplicaSet", rs), top,
                          labels | {"pod-template-hash": template_hash}, created)
        elif w.kind == "StatefulSet":
            revision = f"{w.name}-{_random_hash(rng, 10)}"
            for replica in range(w.replicas):
                pod = f"{w.name}-{replica}"
                self._pod(w, pod, ("StatefulSet", w.name), ("StatefulSet", w.name), labels | {
                    "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pod,
                }, epoch - rng.randrange(86400, 60 * 86400))
        elif w.kind == "DaemonSet":
            revision = _random_hash(rng, 10)
            for node in self.nodes:
                self._pod(w, f"{w.name}-{_random_hash(rng, 5)}", ("DaemonSet", w.name), ("DaemonSet", w.name),
                          labels | {"controller-revision-hash": revision, "pod-template-generation": "1"},
                          epoch - 90 * 86400, node=node.name)
        elif w.kind == "CronJob":
            last_run_minutes = int(epoch // 3600) * 60 - 60 * rng.randrange(0, 6)
            for run in range(w.replicas):  # one pod per Job, the newest first
                minutes = last_run_minutes - 60 * run
                self._job_pod(w, f"{w.name}-{minutes}", ("CronJob", w.name), labels, minutes * 60.0,
                              "Running" if w.active and run == 0 else "Succeeded")
        elif w.kind == "Job":
            self._job_pod(w, w.name, None, labels, epoch - rng.randrange(600, 7200), "Running")
        else:
            name = f"{w.name}-{_random_hash(rng, 5)}"
            self._pod(w, name, None, ("Pod", name), labels, epoch - rng.randrange(3600, 5 * 86400))

    def _job_pod(self, w: _Workload, job: str, owner: tuple[str, str] | None, labels: dict[str, str],
                 created: float, phase: str) -> None:
        self.jobs[(w.namespace, job)] = owner
        controller_uid = object_uid(self.seed, "Job", w.namespace, job)
        self._pod(w, f"{job}-{_random_hash(self.rng, 5)}", ("Job", job), owner or ("Job", job), labels | {
            "batch.kubernetes.io/controller-uid": controller_uid, "batch.kubernetes.io/job-name": job,
            "controller-uid": controller_uid, "job-name": job,
        }, created, phase=phase)

    def _pod(self, w: _Workload, name: str, owner: tuple[str, str] | None, top: tuple[str, str],
             labels: dict[str, str], created: float, node: str | None = None, phase: str = "Running") -> None:
        rng = self.rng
        containers = tuple(self._container(slot, phase == "Running") for slot in w.containers)
        init_containers = tuple(self._container(slot, False) for slot in w.init_containers)
        self.pods.append(SimPod(
            namespace=w.namespace, name=name, uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            node=node or rng.choice(self.nodes).name, owner_kind=owner[0] if owner else None,
            owner_name=owner[1] if owner else None, workload_kind=top[0], workload_name=top[1],
            phase=phase, qos_class=qos_class(containers + init_containers), labels=labels,
            containers=containers, init_containers=init_containers, created_seconds=float(created),
        ))

    def _container(self, slot: _Slot, running: bool) -> SimContainer:
        usage = _usage(self.rng, slot) if running else {}
        return SimContainer(slot.name, slot.image, slot.cpu_request, slot.cpu_limit, slot.memory_request,
                            slot.memory_limit, **usage)  # type: ignore[arg-type]

    def mark_pending(self, count: int) -> None:
        """Leave a few extra replicas unscheduled, as a full cluster does."""
        for index in self.rng.sample(self._pending_candidates, min(count, len(self._pending_candidates))):
            pod = self.pods[index]
            idle = tuple(replace(c, cpu_usage_millicores=0.0, memory_working_set_bytes=0.0, throttled_ratio=0.0,
                                 restart_count=0, last_termination_reason=None, oom_events=0, restarts_per_hour=0.0)
                         for c in pod.containers)
            self.pods[index] = replace(pod, node=None, phase="Pending", containers=idle)
