"""How long each container's history in a window is: the time of its first sample there.

A recommendation resting on a day of samples deserves less trust than one resting on a week
(shared/domain/rightsizing.py confidence). Where the raw samples are kept, the first sample is the
first run of the container's earliest span in the window (a span's first run has its sample; a span
begun before the window counts from the window's first run): a read of spans, not samples. Else it
is the first hourly rollup holding the container (to the hour): a container whose first sample is
older than the raw samples has more history than confidence asks for anyway.
"""

from __future__ import annotations

import json

from shared.store.daily_rollups import SPANS_OF_CONTAINERS, run_range
from shared.store.dialect import Connection

_FIRST_SPANS = (
    "SELECT f.container_id, CAST(r.started_at AS INTEGER) FROM ("
    " SELECT cs.container_id, MIN(MAX(cs.first_run_id, :first_run)) AS run_id FROM container_spans cs"
    f" WHERE {SPANS_OF_CONTAINERS} GROUP BY cs.container_id) f JOIN runs r ON r.id = f.run_id")
_FIRST_HOURS = (
    "SELECT container_id, MIN(hour) FROM hourly_rollups WHERE container_id IN (SELECT value FROM json_each(:ids))"
    " AND hour >= :start AND hour < :end GROUP BY container_id")


def first_seen(conn: Connection, start: int, end: int, container_ids: list[int]) -> dict[int, int]:
    """Container id -> the time of its first sample in [start, end) (at least `start`); absent: none."""
    first_run, last_run = run_range(conn, start, end)
    params = {"start": start, "end": end, "ids": json.dumps(container_ids), "first_run": first_run,
              "last_run": last_run}
    found: dict[int, int] = {}
    for query in (_FIRST_SPANS, _FIRST_HOURS):
        for container_id, ts in conn.execute(query, params):
            found[container_id] = max(start, min(ts, found.get(container_id, ts)))
    return found
