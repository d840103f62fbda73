"""Monotonic counters kept in the database, for the `*_total` metrics of /metrics.

A count over a table that retention prunes drops when old rows go, which Prometheus takes for a
counter reset: `increase()` then adds the whole remaining count, and alerts on it fire for
nothing. So each counted event also bumps a row of `counters`, in the same transaction as the row
it counts (either both are stored or neither), and that row is never pruned.
"""

from __future__ import annotations

import json

from shared.store.dialect import Connection

COLLECTIONS = "collections"  # labels: status (ok, partial, failed, skipped)
NOTIFICATIONS_SENT = "notifications_sent"  # labels: channel, status (sent, retry, failed)
# What runs asked of Prometheus, added up (no labels): what a per-sample-billed managed Prometheus charges for.
PROMETHEUS_QUERIES = "prometheus_queries"
PROMETHEUS_SERIES_RETURNED = "prometheus_series_returned"
PROMETHEUS_RESPONSE_BYTES = "prometheus_response_bytes"
PROMETHEUS_SAMPLES_PROCESSED = "prometheus_samples_processed"


def bump(conn: Connection, name: str, labels: dict[str, str], by: int = 1) -> None:
    """Add `by` to the counter `name` with `labels`; call it inside the transaction that stores what it counts."""
    conn.execute(
        "INSERT INTO counters (name, labels, value) VALUES (?, ?, ?)"
        " ON CONFLICT (name, labels) DO UPDATE SET value = counters.value + excluded.value",
        (name, json.dumps(labels, sort_keys=True), by),
    )


def counter_values(conn: Connection, name: str) -> list[tuple[dict[str, str], int]]:
    """Every labelled value of the counter `name`, in label order."""
    rows = conn.execute("SELECT labels, value FROM counters WHERE name = ? ORDER BY labels", (name,))
    return [(json.loads(labels), value) for labels, value in rows]
