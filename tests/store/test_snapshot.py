"""A report reads one snapshot: a fold or a retention pass committing while it reads changes nothing it shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from shared.core.settings import Settings, load_settings
from shared.entry.report import report_answer
from shared.store import usage_series, window_usage
from shared.store.connection import open_store
from shared.store.daily_rollups import coverage, fold_samples
from shared.store.retention import apply_retention
from tests.conftest import BACKENDS
from tests.support.report_history import SAMPLE_TS, SAMPLES, History, random_history

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

NOW = 1_767_225_600 + 10 * 86_400 + 13 * 3600  # 2026-01-11 13:00 UTC


class Transactions:
    """A fold deadline with time for `n` transactions: the fold stops part way, as when out of budget."""

    def __init__(self, n: int):
        self.left = n

    def remaining(self) -> float:
        self.left -= 1
        return self.left


def history(tmp_path: Path) -> Settings:
    """60 hours of history up to NOW; raw samples kept for a day."""
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", retention_raw_days=1,
                             retention_hourly_days=90, collect_interval_seconds=300)
    conn = open_store(settings)
    random_history(History(conn), NOW, hours=60)
    conn.close()
    return settings


def answer(settings: Settings, **params: str) -> str:
    request = Request(EnvironBuilder(path="/", query_string=params).get_environ())
    body, status, _ = report_answer(request, settings, clock=lambda: NOW)
    assert status == 200, body
    return body


def meanwhile(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, write: Callable[[], None]) -> list[bool]:
    """Make `module.name` run `write` (on a connection of its own) once, before its first call."""
    original, done = getattr(module, name), []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not done:
            write()
            done.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return done


def test_a_fold_committing_between_the_reads_of_a_report_counts_no_run_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = history(tmp_path)
    conn = open_store(settings)
    fold_samples(conn, NOW, 90, Transactions(30))  # some runs folded into day rows, the newest not yet
    folded_before = coverage(conn).folded_run_id
    stored = conn.execute(f"SELECT COUNT(*) FROM {SAMPLES} WHERE cs.phase = 'Running'"
                          " AND s.cpu_usage_avg_millicores IS NOT NULL").fetchone()[0]
    monkeypatch.setattr(window_usage, "RAW_WINDOW_MAX_SAMPLES", 0)  # day rows and unfolded runs
    quiet = json.loads(answer(settings, window="3d", limit="all"))
    assert [piece["source"] for piece in quiet["window"]["sources"]] == ["daily", "unfolded"]

    # After the report has seen which runs are folded, and before it reads the day rows, the fold
    # of the other runs commits (retention after a collection, from another connection).
    fold = meanwhile(monkeypatch, window_usage, "_from_daily", lambda: fold_samples(conn, NOW, 90))
    busy = json.loads(answer(settings, window="3d", limit="all"))

    assert fold and coverage(conn).folded_run_id > folded_before
    conn.close()
    assert sum(c["cpu_samples"] for c in busy["containers"]) == stored
    assert busy == quiet


def test_the_charts_show_the_samples_the_report_counted_whatever_retention_does_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = history(tmp_path)
    workload = {"window": "3d", "format": "html", "namespace": "shop", "workload": "Deployment/api-0"}  # charts
    quiet = answer(settings, **workload)

    # Between the report's figures and its charts, a retention pass rolls the hours older than a
    # day up and deletes their raw samples.
    retention = meanwhile(monkeypatch, usage_series, "usage_series",
                          lambda: apply_retention(settings, clock=lambda: NOW))
    busy = answer(settings, **workload)

    assert retention
    conn = open_store(settings)
    assert conn.execute(f"SELECT MIN({SAMPLE_TS}) FROM {SAMPLES}").fetchone()[0] > NOW - 2 * 86_400  # it did delete
    conn.close()
    assert busy == quiet
