"""Schema 3's move of the samples: from rows repeating requests, limits and phase to spans and lean samples.

Batches of whole runs, oldest id first, each in its own transaction (shared/store/connection.py runs
them): the samples of the runs after the newest one moved so far are read from the old table
(`samples`), their spans found or started as a collection does (shared/store/container_spans.py),
and the lean rows written to `span_samples`. The old rows stay until the migration's last
transaction renames the table aside (`samples_v2`, which retention then deletes in batches), so a
release still on schema 2 reads them all meanwhile, and a migration killed half way goes on from the
last batch committed.
"""

from __future__ import annotations

import sqlite3

from shared.store.container_spans import SpanBook

BATCH_ROWS = 20_000  # about a tenth of a second of writing on the 2-core test machine
# Where the migration's last transaction puts the old table (every row moved): retention deletes it.
MOVED_SAMPLES = "samples_v2"

_USAGE = ("cpu_usage_avg_millicores", "cpu_usage_max_millicores", "memory_working_set_avg_bytes",
          "memory_working_set_max_bytes", "cpu_throttled_ratio", "restart_count", "last_termination_reason",
          "oom_events")
_OLD_ROWS = f"""
SELECT run_id, pod_id, container_id, phase, cpu_request_millicores, cpu_limit_millicores, memory_request_bytes,
       memory_limit_bytes, {', '.join(_USAGE)}
FROM samples
WHERE run_id > :after AND run_id <= COALESCE(
    (SELECT run_id FROM samples WHERE run_id > :after ORDER BY run_id LIMIT 1 OFFSET :rows),
    (SELECT MAX(run_id) FROM samples))
ORDER BY run_id
"""


def move_samples(conn: sqlite3.Connection) -> bool:
    """Move the samples of the next runs (whole runs, about BATCH_ROWS rows); False when none are left."""
    after = conn.execute("SELECT COALESCE(MAX(run_id), 0) FROM span_samples").fetchone()[0]
    rows = conn.execute(_OLD_ROWS, {"after": after, "rows": BATCH_ROWS - 1}).fetchall()
    if not rows:
        return False
    spans = SpanBook(conn, {row[1] for row in rows})
    moved = []
    for row in rows:
        run_id, pod_id, container_id = row[:3]
        state = (row[3], row[4], row[5], row[6], row[7])
        moved.append((run_id, spans.span_id(run_id, pod_id, container_id, state), *row[8:]))
    spans.write()
    conn.executemany(f"INSERT INTO span_samples (run_id, span_id, {', '.join(_USAGE)})"
                     f" VALUES ({', '.join('?' * (2 + len(_USAGE)))})", moved)
    return True
