"""One collector cluster-wide: a `coordination.k8s.io/v1` Lease, taken once per invocation.

client-go's algorithm, made request-scoped: get the Lease; create it if missing; take it when it is
free, ours, or expired (renewTime + leaseDurationSeconds in the past, counting a transition); every
write carries the resourceVersion that was read, so a racing writer gets 409 Conflict and loses.
The holder renews from a background thread during a long run and releases at the end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared.sources.kube import LEASES, KubeClient, KubeConflict, KubeError, KubeNotFound

log = logging.getLogger(__name__)


def format_micro_time(seconds: float) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> float | None:
    """Kubernetes MicroTime (or any RFC 3339 time) as Unix seconds; None when absent or empty."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CollectorLease:
    """The collector Lease as seen by one holder; not thread-safe except `renew` from its keeper."""

    def __init__(self, client: KubeClient, namespace: str, name: str, holder: str, duration_seconds: int,
                 clock: Callable[[], float] = time.time):
        self._client = client
        self.namespace, self.name, self.holder = namespace, name, holder
        self.duration_seconds = duration_seconds
        self._clock = clock
        self._lease: dict | None = None  # the object as last written by us
        self.held_by: str | None = None  # who holds it when we could not take it

    def try_acquire(self) -> bool:
        """Take the lease once, without waiting: True if we hold it now."""
        now = self._clock()
        try:
            current = self._client.request("GET", LEASES, self.namespace, self.name, verb="get")
        except KubeNotFound:
            return self._create(now)
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = parse_micro_time(spec.get("renewTime")) or parse_micro_time(spec.get("acquireTime")) or 0.0
        duration = spec.get("leaseDurationSeconds") or self.duration_seconds
        if holder and holder != self.holder and renewed + duration > now:
            self.held_by = holder
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder != self.holder else 0)
        acquire_time = spec.get("acquireTime") if holder == self.holder else format_micro_time(now)
        current["spec"] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": acquire_time,
            "renewTime": format_micro_time(now),
            "leaseTransitions": transitions,
        }
        return self._update(current)

    def renew(self) -> bool:
        """Move renewTime forward; False when someone else took the lease meanwhile."""
        if self._lease is None:
            return False
        lease = {**self._lease, "spec": {**self._lease["spec"], "renewTime": format_micro_time(self._clock())}}
        return self._update(lease)

    def release(self) -> None:
        """Give the lease up so the next invocation need not wait for it to expire."""
        if self._lease is None:
            return
        spec = {**self._lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                "renewTime": format_micro_time(self._clock())}
        try:
            self._update({**self._lease, "spec": spec})
        except KubeError as exc:  # it expires on its own; the next run takes it over
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
        self._lease = None

    def _create(self, now: float) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration_seconds,
                "acquireTime": format_micro_time(now),
                "renewTime": format_micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            self._lease = self._client.request("POST", LEASES, self.namespace, verb="create", body=body)
        except KubeConflict:  # a racing invocation created it first
            self.held_by = "another invocation (racing create)"
            return False
        return True

    def _update(self, lease: dict) -> bool:
        try:
            self._lease = self._client.request("PUT", LEASES, self.namespace, self.name, verb="update", body=lease)
        except KubeConflict:
            self._lease = None
            self.held_by = "another invocation (resourceVersion conflict)"
            return False
        return True


class LeaseKeeper:
    """Renews a held lease every third of its duration until stopped; `lost` tells if it failed."""

    def __init__(self, lease: CollectorLease):
        self._lease = lease
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(1.0, self._lease.duration_seconds / 3)
        while not self._stop.wait(interval):
            try:
                if not self._lease.renew():
                    self.lost = True
                    log.error("lost the collector lease to %s", self._lease.held_by)
                    return
            except KubeError as exc:
                log.warning("lease renewal failed, will retry: %s", exc)
