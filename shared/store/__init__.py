"""The database: connection, schema and migrations, runs, counters, idempotency, rollups, retention."""
