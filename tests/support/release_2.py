"""A database as release 2 (schema version 2) wrote it, made from one this release wrote: for upgrade tests.

Release 2 kept every sample with its container, pod, time, phase, requests and limits, under two
indexes, and each pod's last_seen. `as_written_by_release_2` rebuilds exactly that from the spans
and lean samples, and sets the version back to 2; opening the file with `connect` then runs
migration 4 as it runs on an upgraded installation.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from shared.store.sample_migration import move_samples
from shared.store.schema import MIGRATIONS

# The version before the migration to container spans (2 as released; found, not assumed, so the
# tests follow when a migration is inserted before it)
SPANS_MIGRATION = next(number for number, migration in enumerate(MIGRATIONS)
                       if getattr(migration, "step", None) is move_samples)

# The tables the migrations after it create (found in their text): release 2 had none of them.
LATER_TABLES = [name for migration in MIGRATIONS[SPANS_MIGRATION + 1:] if isinstance(migration, str)
                for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", migration)]

RELEASE_2_SAMPLES = """
CREATE TABLE samples (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    container_id INTEGER NOT NULL REFERENCES containers (id),
    pod_id INTEGER NOT NULL REFERENCES pods (id),
    ts INTEGER NOT NULL,
    phase TEXT NOT NULL,
    cpu_request_millicores INTEGER,
    cpu_limit_millicores INTEGER,
    memory_request_bytes INTEGER,
    memory_limit_bytes INTEGER,
    cpu_usage_avg_millicores INTEGER,
    cpu_usage_max_millicores INTEGER,
    memory_working_set_avg_bytes INTEGER,
    memory_working_set_max_bytes INTEGER,
    cpu_throttled_ratio REAL,
    restart_count INTEGER NOT NULL,
    last_termination_reason TEXT,
    oom_events INTEGER,
    PRIMARY KEY (run_id, pod_id, container_id)
) WITHOUT ROWID
"""
# Every sample as release 2 stored it, read from this release's tables.
SAMPLE_ROWS = """
SELECT s.run_id, cs.container_id, cs.pod_id, CAST(r.started_at AS INTEGER), cs.phase, cs.cpu_request_millicores,
       cs.cpu_limit_millicores, cs.memory_request_bytes, cs.memory_limit_bytes, s.cpu_usage_avg_millicores,
       s.cpu_usage_max_millicores, s.memory_working_set_avg_bytes, s.memory_working_set_max_bytes,
       s.cpu_throttled_ratio, s.restart_count, s.last_termination_reason, s.oom_events
FROM samples s JOIN container_spans cs ON cs.id = s.span_id JOIN runs r ON r.id = s.run_id
"""


def sample_rows(conn: sqlite3.Connection) -> list[tuple]:
    """Every sample with what release 2 stored of it, in its primary key's order."""
    return conn.execute(SAMPLE_ROWS + " ORDER BY 1, 3, 2").fetchall()


def as_written_by_release_2(path: Path) -> list[tuple]:
    """Turn the file back into release 2's schema, keeping every sample; its samples as `sample_rows` gives them."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        rows = sample_rows(conn)
        conn.execute("DROP TABLE samples")
        conn.execute("DROP TABLE container_spans")
        for table in reversed(LATER_TABLES):  # those referred to last
            conn.execute(f"DROP TABLE {table}")
        conn.execute(RELEASE_2_SAMPLES)
        conn.executemany(f"INSERT INTO samples VALUES ({', '.join('?' * 17)})", rows)
        conn.execute("CREATE INDEX samples_container_ts ON samples (container_id, ts)")
        conn.execute("CREATE INDEX samples_ts ON samples (ts)")
        conn.execute("ALTER TABLE pods ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE pods SET last_seen = (SELECT MAX(ts) FROM samples WHERE pod_id = pods.id)"
                     " WHERE id IN (SELECT pod_id FROM samples)")
        conn.execute("CREATE INDEX pods_last_seen ON pods (last_seen)")
        conn.execute(f"PRAGMA user_version = {SPANS_MIGRATION}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return rows
