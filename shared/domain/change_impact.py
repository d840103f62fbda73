"""Change impact: when a workload container's requests or limits changed, and what followed.

From the stored history (the container spans: shared/store/resource_history.py), a change is a span
that declares other requests or limits than the container's declared ones so far, and that either
starts a new pod (a rollout) or follows its own pod's span with other values (an in-place resize): a
pod changing phase only, or an old pod living on during a rollout, is not a change. The change is
at its first run. Around each change, two equal windows, as long as REPORT_CHANGE_WINDOW_HOURS at
most and within the report window, the raw samples and the neighbouring changes, are compared:

- CPU p95 (nearest rank) of the Running samples' usage and memory peak (highest working set),
- CFS throttling: the average and highest ratio of the Running samples,
- OOM kills: each sample counts its OOM events, or one kill when its restart count rose since its
  pod's previous sample with the last termination reason OOMKilled, whichever is more,
- restarts: the rises of each pod's restart count between its samples (a pod's first sample in the
  report window counts none: Kubernetes does not say when earlier restarts happened).

A change hurt when OOM kills rose, or throttling rose to ALERT_CPU_THROTTLED_RATIO or more on average
(the ResourceChangeHurt alert: shared/domain/alerts/change_rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.core.formats import format_bytes, format_millicores
from shared.store.dialect import Connection
from shared.store.histograms import nearest_rank
from shared.store.resource_history import (
    DeclaredSpan,
    ImpactSample,
    declared_spans,
    impact_samples,
    raw_history_start,
)

DECLARED = ("CPU request", "CPU limit", "memory request", "memory limit")


@dataclass(frozen=True)
class Declared:
    """What a container declares: None where it sets nothing."""

    cpu_request_millicores: int | None
    cpu_limit_millicores: int | None
    memory_request_bytes: int | None
    memory_limit_bytes: int | None

    def as_tuple(self) -> tuple[int | None, ...]:
        """The four values in DECLARED order."""
        return (self.cpu_request_millicores, self.cpu_limit_millicores, self.memory_request_bytes,
                self.memory_limit_bytes)


@dataclass(frozen=True)
class ImpactFigures:
    """What a container did over one of the windows around a change (every pod together)."""

    start: int
    end: int
    samples: int  # Running samples with CPU usage
    cpu_p95_millicores: float | None
    memory_peak_bytes: int | None
    cpu_throttled_ratio_avg: float | None
    cpu_throttled_ratio_max: float | None
    oom_kills: int
    restarts: int


@dataclass(frozen=True)
class ResourceChange:
    """One change of a container's requests or limits, and the windows before and after it."""

    ts: int  # the time of the first run with the new values (Unix seconds)
    old: Declared
    new: Declared
    before: ImpactFigures
    after: ImpactFigures
    worse: tuple[str, ...] = ()  # what got worse after it, in words (`hurt`); empty: nothing did

    @property
    def label(self) -> str:
        """The change in words, as a chart marker says it: `CPU request 500m -> 250m; memory limit ...`."""
        return "; ".join(self.changed)

    @property
    def changed(self) -> list[str]:
        """The values that changed, as `CPU request 500m -> 250m` (`none` where unset)."""
        described = []
        for name, old, new in zip(DECLARED, self.old.as_tuple(), self.new.as_tuple(), strict=True):
            if old != new:
                fmt = format_millicores if name.startswith("CPU") else format_bytes
                described.append(f"{name} {fmt(old) if old is not None else 'none'} -> "
                                 f"{fmt(new) if new is not None else 'none'}")
        return described



def hurt(before: ImpactFigures, after: ImpactFigures, throttled_ratio: float) -> tuple[str, ...]:
    """What got worse from `before` to `after`, in words: more OOM kills, or throttling that rose to
    `throttled_ratio` (ALERT_CPU_THROTTLED_RATIO) or more on average. Empty: nothing did."""
    worse = []
    if after.oom_kills > before.oom_kills:
        worse.append(f"OOM kills {before.oom_kills} -> {after.oom_kills}")
    if after.cpu_throttled_ratio_avg is not None and after.cpu_throttled_ratio_avg >= throttled_ratio \
            and after.cpu_throttled_ratio_avg > (before.cpu_throttled_ratio_avg or 0.0):
        worse.append(f"CPU throttling {before.cpu_throttled_ratio_avg or 0:.0%} -> "
                     f"{after.cpu_throttled_ratio_avg:.0%} of periods on average")
    return tuple(worse)


def change_times(spans: Iterable[DeclaredSpan]) -> list[tuple[int, Declared, Declared]]:
    """(time, old, new) of each change in `spans` (one container's, ordered by first run)."""
    changes: list[tuple[int, Declared, Declared]] = []
    current: Declared | None = None
    pods: dict[int, Declared] = {}  # each pod's newest declared values
    for span in spans:
        declared = Declared(*span.declared)
        previous_of_pod = pods.get(span.pod_id)
        pods[span.pod_id] = declared
        if current is None:
            current = declared
        elif declared != current and declared != previous_of_pod:
            changes.append((span.first_ts, current, declared))
            current = declared
    return changes


def change_windows(spans: list[DeclaredSpan], start: int, end: int,
                   longest_seconds: int) -> list[tuple[int, Declared, Declared, int]]:
    """(time, old, new, window length) of each change of one container within (start, end): the windows
    before and after it are equal, at most `longest_seconds`, within [start, end) and the neighbouring changes."""
    times = [change for change in change_times(spans) if start < change[0] < end]
    windows = []
    for index, (at, old, new) in enumerate(times):
        since = times[index - 1][0] if index else start
        until = times[index + 1][0] if index + 1 < len(times) else end
        windows.append((at, old, new, min(longest_seconds, at - since, until - at)))
    return windows


def resource_changes(windows: list[tuple[int, Declared, Declared, int]], samples: list[ImpactSample],
                     throttled_ratio: float) -> list[ResourceChange]:
    """Each change of `change_windows` with the figures of `samples` (the container's, covering its windows)
    before and after it, and what got worse."""
    found = []
    for at, old, new, length in windows:
        before, after = impact(samples, at - length, at), impact(samples, at, at + length)
        found.append(ResourceChange(at, old, new, before, after, hurt(before, after, throttled_ratio)))
    return found


def impact(samples: list[ImpactSample], start: int, end: int) -> ImpactFigures:
    """The figures of the samples taken in [start, end); `samples` are one container's, oldest first,
    each with its pod's previous restart count (None for a pod's first sample)."""
    cpu: list[int] = []
    memory: list[int] = []
    throttled: list[float] = []
    oom_kills = restarts = 0
    for s in samples:
        if not start <= s.ts < end:
            continue
        rise = max(0, s.restart_count - s.previous_restart_count) if s.previous_restart_count is not None else 0
        restarts += rise
        oom_kills += max(s.oom_events or 0, 1 if rise and s.last_termination_reason == "OOMKilled" else 0)
        if s.phase != "Running":
            continue
        if s.cpu_usage_avg_millicores is not None:
            cpu.append(s.cpu_usage_avg_millicores)
        if s.memory_working_set_max_bytes is not None:
            memory.append(s.memory_working_set_max_bytes)
        if s.cpu_throttled_ratio is not None:
            throttled.append(s.cpu_throttled_ratio)
    cpu.sort()
    return ImpactFigures(
        start, end, len(cpu), nearest_rank(cpu, 95), max(memory, default=None),
        sum(throttled) / len(throttled) if throttled else None, max(throttled, default=None), oom_kills, restarts)


def container_changes(conn: Connection, container_ids: list[int], start: int, end: int,
                      longest_seconds: int, throttled_ratio: float) -> dict[int, list[ResourceChange]]:
    """The changes of each container within [start, end) with what followed. The windows stop at the oldest
    raw sample (older ones are rolled up: no percentiles, no restarts between samples); the samples are read
    only for the containers that changed, only those of the runs from their first window to their last."""
    start = max(start, raw_history_start(conn) or end)
    windows = {container_id: found for container_id, spans in declared_spans(conn, container_ids, start, end).items()
               if (found := change_windows(spans, start, end, longest_seconds))}
    if not windows:
        return {}
    samples = impact_samples(conn, list(windows), min(w[0][0] - w[0][3] for w in windows.values()),
                             max(w[-1][0] + w[-1][3] for w in windows.values()))
    return {container_id: resource_changes(found, samples.get(container_id, []), throttled_ratio)
            for container_id, found in windows.items()}
