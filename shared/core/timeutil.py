"""Time units, UTC hour and day boundaries, and the UTC formats the monitor shows, in one place.

Rollups are kept per UTC hour and UTC day, and report windows of a day or more start at a UTC
midnight: every module that cuts time into those pieces must cut it the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

HOUR_SECONDS = 3600
DAY_SECONDS = 86_400


def hour_floor(seconds: float) -> int:
    """The start of the UTC hour holding `seconds` (Unix time)."""
    return int(seconds // HOUR_SECONDS) * HOUR_SECONDS


def day_floor(seconds: float) -> int:
    """The UTC midnight starting the day holding `seconds` (Unix time)."""
    return int(seconds // DAY_SECONDS) * DAY_SECONDS


def utc_minute(seconds: float) -> str:
    """`2026-01-11 13:00`: for people; callers add ` UTC` where the line does not say it already."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def iso_utc(seconds: float) -> str:
    """`2026-01-11T13:00:00Z` (RFC 3339, to the second): for machines (JSON, events, Alertmanager)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(seconds: float) -> str:
    """`42s ago`, `17 min ago`, `3.5 h ago`: how long ago, for people."""
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.1f} h ago"
