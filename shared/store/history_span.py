"""How long each container's history in a window is: the time of its first sample there.

A recommendation resting on a day of samples deserves less trust than one resting on a week
(shared/domain/rightsizing.py confidence). The first sample is read from the raw samples where they
are kept (exact), else from the first hourly rollup holding the container (to the hour): a container
whose first sample is older than the raw samples has more history than confidence asks for anyway.
"""

from __future__ import annotations

import json
import sqlite3


def first_seen(conn: sqlite3.Connection, start: int, end: int, container_ids: list[int]) -> dict[int, int]:
    """Container id -> the time of its first sample in [start, end) (at least `start`); absent: none."""
    params = {"start": start, "end": end, "ids": json.dumps(container_ids)}
    found: dict[int, int] = {}
    for query in (
        "SELECT container_id, MIN(ts) FROM samples WHERE container_id IN (SELECT value FROM json_each(:ids))"
        " AND ts >= :start AND ts < :end GROUP BY container_id",
        "SELECT container_id, MIN(hour) FROM hourly_rollups WHERE container_id IN (SELECT value FROM json_each(:ids))"
        " AND hour >= :start AND hour < :end GROUP BY container_id",
    ):
        for container_id, ts in conn.execute(query, params):
            found[container_id] = max(start, min(ts, found.get(container_id, ts)))
    return found
