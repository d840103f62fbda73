"""Small pieces every simulated object is made of: timestamps, stable ids, addresses, resource amounts."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from shared.simulator.quantities import cpu_spellings, memory_spellings, pick_spelling
from shared.simulator.scenario import SimContainer

OWNER_API_VERSIONS = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                      "Deployment": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1"}


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with whole seconds, as metav1.Time serialises."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def hex_id(*parts: str) -> str:
    """64 hex digits that depend only on `parts`: container and image ids, checksums."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def ip(prefix: str, number: int) -> str:
    """An address in `prefix` (two octets) numbered `number`."""
    return f"{prefix}.{number // 250 % 250}.{number % 250 + 2}"


def dump(obj: Any) -> bytes:
    """Compact JSON, as the API server writes it."""
    return orjson.dumps(obj)


def resources(container: SimContainer, *salt: str) -> dict[str, dict[str, str]]:
    """A container's requests and limits, each amount spelled one of its exact ways, chosen by `salt`:
    replicas of one workload share their template, so they share its spellings."""
    amounts_by_kind: dict[str, dict[str, str]] = {}
    for kind, cpu, memory in (("requests", container.cpu_request_millicores, container.memory_request_bytes),
                              ("limits", container.cpu_limit_millicores, container.memory_limit_bytes)):
        amounts = {}
        if cpu is not None:
            amounts["cpu"] = pick_spelling(cpu_spellings(cpu), *salt, container.name, kind, "cpu")
        if memory is not None:
            amounts["memory"] = pick_spelling(memory_spellings(memory), *salt, container.name, kind, "memory")
        if amounts:
            amounts_by_kind[kind] = amounts
    return amounts_by_kind
