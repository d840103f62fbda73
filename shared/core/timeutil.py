"""Time units and UTC hour and day boundaries, in one place (their formats are in shared/core/formats.py).

Rollups are kept per UTC hour and UTC day, and report windows of a day or more start at a UTC
midnight: every module that cuts time into those pieces must cut it the same way.
"""

from __future__ import annotations

HOUR_SECONDS = 3600
DAY_SECONDS = 86_400


def hour_floor(seconds: float) -> int:
    """The start of the UTC hour holding `seconds` (Unix time)."""
    return int(seconds // HOUR_SECONDS) * HOUR_SECONDS


def day_floor(seconds: float) -> int:
    """The UTC midnight starting the day holding `seconds` (Unix time)."""
    return int(seconds // DAY_SECONDS) * DAY_SECONDS
