"""Every unit and time the monitor writes for people or for machines, in one place.

Sizes are Kubernetes binary quantities (`512Mi`, `1.5Gi`), CPU is millicores (`250m`) or cores,
durations are `45s`, `17min`, `5h`, `1.5d`, and times are UTC: one spelling per kind of figure, so
a report, an alert, the CLI and the page never disagree about the same number.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4


def format_bytes(value: float | None) -> str:
    """A size as a Kubernetes binary quantity rounded for reading: `512Mi`, `1.5Gi`, `900Ki`; `-` for none."""
    if value is None:
        return "-"
    for unit, size in (("Ti", TiB), ("Gi", GiB)):
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    for unit, size in (("Mi", MiB), ("Ki", KiB)):
        if value >= size:
            return f"{round(value / size)}{unit}"
    return f"{round(value)}"


def format_millicores(value: float | None) -> str:
    """CPU as a Kubernetes quantity in millicores: `250m`, `1500m`; `-` for none."""
    return "-" if value is None else f"{round(value)}m"


def format_cores(millicores: float | None) -> str:
    """A total of CPU: `250m` below a core, then `1.5 cores`, `11.8 cores`, `1,204 cores`; `-` for none."""
    if millicores is None:
        return "-"
    if millicores < 999.5:
        return format_millicores(millicores)
    cores = f"{millicores / 1000:.3g}" if millicores < 100_000 else f"{millicores / 1000:,.0f}"
    return f"{cores} core" if cores == "1" else f"{cores} cores"


def format_percent(part: float, whole: float | None) -> str:
    """`part` as a whole percentage of `whole`: `42%`; `-` when there is no whole."""
    return f"{100 * part / whole:.0f}%" if whole else "-"


@functools.lru_cache(maxsize=256)  # a report writes the same covered time into every container's reasons
def format_duration(seconds: float) -> str:
    """A duration: `45s` under a minute, then `17min`, `5h`, `1.5d`, `7d` (one decimal, none when whole)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    for unit, size in (("d", DAY_SECONDS), ("h", HOUR_SECONDS)):
        if seconds >= size:
            return f"{seconds / size:.1f}".removesuffix(".0") + unit
    return f"{seconds / 60:.0f}min"


def ago(seconds: float) -> str:
    """How long ago, for people: `42s ago`, `17min ago`, `3.5h ago`."""
    return f"{format_duration(seconds)} ago"


def utc_minute(seconds: float | None) -> str:
    """`2026-01-11 13:00 UTC`, for people; `-` for none."""
    return "-" if seconds is None else _utc(seconds, "%Y-%m-%d %H:%M UTC")


def utc_second(seconds: float) -> str:
    """`2026-01-11 13:00:05 UTC`, for people where seconds matter (backups, restores)."""
    return _utc(seconds, "%Y-%m-%d %H:%M:%S UTC")


def iso_utc(seconds: float) -> str:
    """`2026-01-11T13:00:00Z` (RFC 3339, to the second): for machines (JSON, events, Alertmanager)."""
    return _utc(seconds, "%Y-%m-%dT%H:%M:%SZ")


FILE_STAMP = "%Y%m%d_%H%M%S"


def file_stamp(seconds: float) -> str:
    """`20260111_130005`: the UTC time in file names (backups, archives, pre-migration copies), sortable."""
    return _utc(seconds, FILE_STAMP)


def parse_file_stamp(text: str) -> float:
    """The Unix time a `file_stamp` names; ValueError when `text` is not one."""
    return datetime.strptime(text, FILE_STAMP).replace(tzinfo=UTC).timestamp()


def _utc(seconds: float, pattern: str) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(pattern)
