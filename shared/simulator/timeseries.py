"""How each container's usage moves over time: deterministic and piecewise constant on a 60 s grid.

Every value is a pure function of (seed, namespace, pod, container, time), so the simulated
Prometheus, the OpenMetrics backfill and a test computing an expectation by hand all agree.

The CPU rate in step k (the minute [60k, 60k + 60)) is `mean * (1 + swing * (u(k) - u(k-1)))` with
u(k) a hash-derived number in [-0.5, 0.5). The sum over steps telescopes, so the cumulative counter
`container_cpu_usage_seconds_total` is an exact integral from t = 0 in constant time, and the rate
averages to exactly the mean. Swings are narrowed where a limit would be crossed: CFS caps CPU at the
limit and a working set above the memory limit would be an OOM kill.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.simulator.scenario import STEP_SECONDS

if TYPE_CHECKING:
    from shared.simulator.scenario import Scenario, SimContainer, SimPod

CPU_SWING = 0.3
MEMORY_SWING = 0.1
CFS_PERIODS_PER_SECOND = 10.0  # the default 100 ms CFS period
_MASK = (1 << 64) - 1
_MEMORY_SALT = 0x5DEECE66D
_RESTART_SALT = 0xB5297A4D


def _unit(key: int, step: int) -> float:
    """A uniform number in [-0.5, 0.5) for (key, step): the splitmix64 finaliser."""
    x = (key + (step & _MASK) * 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 2.0**64 - 0.5


def series_key(seed: int, namespace: str, pod: str, container: str) -> int:
    """The stable 64-bit identity of one series' noise."""
    digest = hashlib.blake2b(f"{seed}/{namespace}/{pod}/{container}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True, slots=True)
class Signal:
    """The time behaviour of one container, with its constants worked out once."""

    key: int
    cpu_cores: float
    cpu_swing: float
    cpu_origin: float  # u(-1), where the telescoping sum starts
    memory_bytes: float
    memory_swing: float
    has_cpu_limit: bool
    throttled_ratio: float
    epoch_seconds: float
    restart_count: int
    restarts_per_hour: float
    oom_events: int
    oom_on_restart: bool

    def cpu_cores_at(self, t: float) -> float:
        step = math.floor(t / STEP_SECONDS)
        return self.cpu_cores * (1.0 + self.cpu_swing * (_unit(self.key, step) - _unit(self.key, step - 1)))

    def cpu_seconds_total_at(self, t: float) -> float:
        step = math.floor(t / STEP_SECONDS)
        previous = _unit(self.key, step - 1)
        total = STEP_SECONDS * (step + self.cpu_swing * (previous - self.cpu_origin))
        if t != step * STEP_SECONDS:  # scrapes land on the grid: skip the partial step there
            total += (t - step * STEP_SECONDS) * (1.0 + self.cpu_swing * (_unit(self.key, step) - previous))
        return self.cpu_cores * total

    def memory_bytes_at(self, t: float) -> float:
        step = math.floor(t / STEP_SECONDS)
        return self.memory_bytes * (1.0 + 2.0 * self.memory_swing * _unit(self.key ^ _MEMORY_SALT, step))

    def cfs_periods_total_at(self, t: float) -> float | None:
        return CFS_PERIODS_PER_SECOND * t if self.has_cpu_limit else None

    def cfs_throttled_periods_total_at(self, t: float) -> float | None:
        return self.throttled_ratio * CFS_PERIODS_PER_SECOND * t if self.has_cpu_limit else None

    def restarts_since_epoch(self, t: float) -> int:
        """Restarts after the epoch up to `t`: one every 1/rate hours, at a per-container phase."""
        if self.restarts_per_hour <= 0:
            return 0
        period = 3600.0 / self.restarts_per_hour
        phase = _unit(self.key ^ _RESTART_SALT, 0) + 0.5
        return max(0, math.floor((t - self.epoch_seconds) / period - phase) + 1)

    def last_restart_seconds(self, t: float) -> float | None:
        """When the latest restart after the epoch happened, None before the first."""
        count = self.restarts_since_epoch(t)
        if count == 0:
            return None
        period = 3600.0 / self.restarts_per_hour
        return self.epoch_seconds + (_unit(self.key ^ _RESTART_SALT, 0) + 0.5 + count - 1) * period

    def restart_count_at(self, t: float) -> int:
        return self.restart_count + self.restarts_since_epoch(t)

    def oom_events_total_at(self, t: float) -> float:
        return float(self.oom_events + (self.restarts_since_epoch(t) if self.oom_on_restart else 0))


def signal(scenario: Scenario, pod: SimPod, container: SimContainer) -> Signal:
    """The time behaviour of `container` in `pod`."""
    cpu_cores = container.cpu_usage_millicores / 1000.0
    cpu_swing = CPU_SWING
    if container.cpu_limit_millicores and cpu_cores > 0:
        cpu_swing = max(0.0, min(cpu_swing, container.cpu_limit_millicores / 1000.0 / cpu_cores - 1.0))
    memory_swing = MEMORY_SWING
    if container.memory_limit_bytes and container.memory_working_set_bytes > 0:
        headroom = 0.99 * container.memory_limit_bytes / container.memory_working_set_bytes - 1.0
        memory_swing = max(0.0, min(memory_swing, headroom))
    key = series_key(scenario.seed, pod.namespace, pod.name, container.name)
    return Signal(
        key=key, cpu_cores=cpu_cores, cpu_swing=cpu_swing, cpu_origin=_unit(key, -1),
        memory_bytes=container.memory_working_set_bytes, memory_swing=memory_swing,
        has_cpu_limit=container.cpu_limit_millicores is not None, throttled_ratio=container.throttled_ratio,
        epoch_seconds=scenario.epoch_seconds, restart_count=container.restart_count,
        restarts_per_hour=container.restarts_per_hour, oom_events=container.oom_events,
        oom_on_restart=container.last_termination_reason == "OOMKilled",
    )


def cpu_cores_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float:
    """CPU cores used during the 60 s step containing `t`."""
    return signal(scenario, pod, container).cpu_cores_at(t)


def cpu_seconds_total_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float:
    """The cumulative CPU counter at `t`: the exact integral of the rate from t = 0."""
    return signal(scenario, pod, container).cpu_seconds_total_at(t)


def memory_bytes_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float:
    """Working set during the 60 s step containing `t`."""
    return signal(scenario, pod, container).memory_bytes_at(t)


def cfs_periods_total_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float | None:
    """CFS periods elapsed by `t`, None without a CPU limit (cAdvisor exports none then)."""
    return signal(scenario, pod, container).cfs_periods_total_at(t)


def cfs_throttled_periods_total_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float | None:
    """Throttled CFS periods by `t`, None without a CPU limit."""
    return signal(scenario, pod, container).cfs_throttled_periods_total_at(t)


def oom_events_total_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> float:
    """OOM kills counted by `t`: the scenario's count plus one per restart of an OOM-killed container."""
    return signal(scenario, pod, container).oom_events_total_at(t)


def restart_count_at(scenario: Scenario, pod: SimPod, container: SimContainer, t: float) -> int:
    """Restart count at `t`; crash-looping containers keep restarting after the scenario epoch."""
    return signal(scenario, pod, container).restart_count_at(t)
