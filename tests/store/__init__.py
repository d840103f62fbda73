"""Tests of shared/store: migrations, idempotency, rollups, retention, crash safety."""
