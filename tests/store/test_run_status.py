"""Every run status the code writes is one the schema accepts, and the schema accepts no other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.store.connection import connect
from shared.store.run_status import SUCCESSFUL_RUN, RunStatus


def _insert(conn: sqlite3.Connection, status: str) -> None:
    conn.execute("INSERT INTO runs (trigger, started_at, finished_at, status) VALUES ('schedule', 0, 1, ?)", (status,))


def test_the_schema_stores_each_run_status_and_refuses_others(tmp_path: Path) -> None:
    conn = connect(tmp_path / "k8s_metrics.db")
    for status in RunStatus:
        _insert(conn, status)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        _insert(conn, "succeeded")
    successful = [row[0] for row in conn.execute(f"SELECT status FROM runs WHERE {SUCCESSFUL_RUN} ORDER BY id")]
    assert successful == ["ok", "partial"]
