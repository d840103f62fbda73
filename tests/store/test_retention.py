"""Retention: old raw samples become hourly rollups, old rows and orphaned identities go, in resumable passes."""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import time
from collections import defaultdict

import pytest

from shared.cli import main
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.sources.hpas import HpaRecord
from shared.sources.usage import ContainerUsage
from shared.store import retention as retention_module
from shared.store.connection import open_store
from shared.store.daily_rollups import FoldResult, fold_samples
from shared.store.histograms import MAX_RELATIVE_ERROR, from_blob, percentile
from shared.store.retention import RetentionResult, apply_retention, cutoffs
from shared.store.runs import RunRecord, store_collection
from tests.conftest import BACKENDS, make_settings
from tests.support.report_history import SAMPLE_TS, SAMPLES
from tests.support.store_rows import foreign_key_violations
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

HOUR, DAY = 3600, 86_400


def day_start(now: float) -> int:
    return int(now // DAY) * DAY


def store_days(settings: Settings, start: float, days: float, pods: int = 12, nodes: int = 3,
               generation: int = 0, step: int = 300) -> None:
    conn = open_store(settings)
    try:
        rng, inventory = random.Random(start), synthetic_inventory(pods, generation=generation, nodes=nodes)
        for number in range(int(days * DAY / step)):
            store_synthetic_run(conn, inventory, start + number * step, rng)
    finally:
        conn.close()


def count(settings: Settings, sql: str, *params: object) -> int:
    conn = open_store(settings)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def test_an_old_hour_becomes_one_rollup_per_container_with_avg_max_and_p95(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1)
    hour = day_start(clock.now) - 3 * DAY + 5 * HOUR
    inventory = synthetic_inventory(1)  # one pod: containers "app" and "sidecar"
    pod = inventory.pods[0]
    conn = open_store(settings)
    for number in range(12):
        cpu = 10.0 * (number + 1)  # 10, 20, ... 120 millicores
        usage = {(pod.namespace, pod.name, "app"): ContainerUsage(cpu, cpu + 5, 1000.0 * (number + 1), 20_000.0)}
        at = hour + number * 300
        store_collection(conn, RunRecord("schedule", at, at + 1, "ok", containers=2, nodes=3), inventory, usage)
    conn.close()

    result = apply_retention(settings, clock)

    assert (result.hours_rolled_up, result.rollup_rows, result.samples_deleted) == (1, 2, 24)
    conn = open_store(settings)
    app = conn.execute(
        "SELECT r.* FROM hourly_rollups r JOIN containers c ON c.id = r.container_id WHERE c.name = 'app'"
    ).fetchone()
    columns = [d[0] for d in conn.execute("SELECT * FROM hourly_rollups LIMIT 0").description]
    sidecar = conn.execute(
        "SELECT r.samples, r.cpu_usage_samples, r.cpu_usage_p95_millicores, r.cpu_usage_histogram"
        " FROM hourly_rollups r JOIN containers c ON c.id = r.container_id WHERE c.name = 'sidecar'").fetchone()
    conn.close()
    row = dict(zip(columns, app))
    assert row["hour"] == hour and row["samples"] == 12 and row["cpu_usage_samples"] == 12
    assert row["cpu_usage_sum_millicores"] / row["cpu_usage_samples"] == 65  # the average
    assert row["cpu_usage_max_millicores"] == 125
    assert row["cpu_usage_p95_millicores"] == 120  # nearest rank: the 12th of 12
    assert row["memory_working_set_sum_bytes"] == 78_000 and row["memory_working_set_max_bytes"] == 20_000
    assert row["cpu_request_millicores"] == pod.containers[0].cpu_request_millicores
    assert abs(percentile(from_blob(row["cpu_usage_histogram"]), 95) / 120 - 1) <= MAX_RELATIVE_ERROR
    assert abs(percentile(from_blob(row["cpu_usage_histogram"]), 50) / 60 - 1) <= MAX_RELATIVE_ERROR
    assert sidecar == (12, 0, None, None)  # no usage figures: counted, but no average or percentile


def test_retention_keeps_recent_raw_data_and_replaces_older_by_rollups(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=2)
    start = day_start(clock.now) - 3 * DAY
    store_days(settings, start, days=3)
    limits = cutoffs(settings, clock.now)
    raw_kept = count(settings, f"SELECT COUNT(*) FROM {SAMPLES} WHERE {SAMPLE_TS} >= ?", limits.raw_before)
    rolled = count(settings, f"SELECT COUNT(*) FROM {SAMPLES} WHERE {SAMPLE_TS} >= ? AND {SAMPLE_TS} < ?",
                   limits.hourly_before, limits.raw_before)

    result = apply_retention(settings, clock)

    assert result.complete
    assert count(settings, "SELECT COUNT(*) FROM samples") == raw_kept
    assert count(settings, f"SELECT MIN({SAMPLE_TS}) FROM {SAMPLES}") >= limits.raw_before
    assert count(settings, "SELECT SUM(samples) FROM hourly_rollups") == rolled
    assert count(settings, "SELECT MIN(hour) FROM hourly_rollups") == limits.hourly_before
    # the time the rolled-up hours' runs covered stays exactly as long as the rollups: a run of 300 s every 300 s
    assert count(settings, "SELECT MIN(hour) FROM hourly_coverage") == limits.hourly_before
    assert count(settings, "SELECT SUM(covered_seconds) FROM hourly_coverage") == \
        limits.raw_before - limits.hourly_before
    assert count(settings, "SELECT MIN(started_at) FROM runs") >= limits.hourly_before
    assert count(settings, "SELECT COUNT(*) FROM runs") == (start + 3 * DAY - limits.hourly_before) // 300
    assert count(settings, "SELECT COUNT(*) FROM node_samples n JOIN runs r ON r.id = n.run_id"
                           " WHERE r.started_at < ?", limits.raw_before) == 0
    conn = open_store(settings)
    assert foreign_key_violations(conn) == []
    conn.close()


def test_p95_over_days_from_rollups_is_within_the_documented_error(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1)
    store_days(settings, day_start(clock.now) - 4 * DAY, days=3, pods=8)
    conn = open_store(settings)
    exact: dict[int, list[int]] = defaultdict(list)
    for container_id, cpu in conn.execute(
            f"SELECT cs.container_id, s.cpu_usage_avg_millicores FROM {SAMPLES} WHERE {SAMPLE_TS} < ?",
            (cutoffs(settings, clock.now).raw_before,)):
        exact[container_id].append(cpu)
    conn.close()

    apply_retention(settings, clock)

    conn = open_store(settings)
    for container_id, values in exact.items():
        values.sort()
        true_p95 = values[math.ceil(0.95 * len(values)) - 1]
        histogram = sum(from_blob(row[0]) for row in conn.execute(
            "SELECT cpu_usage_histogram FROM hourly_rollups WHERE container_id = ?", (container_id,)))
        estimate = percentile(histogram, 95)
        assert abs(estimate - true_p95) <= MAX_RELATIVE_ERROR * true_p95 + 1e-9, (container_id, true_p95, estimate)
    conn.close()


def test_pods_and_identities_nothing_refers_to_are_deleted(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=2)
    start = day_start(clock.now) - 4 * DAY
    store_days(settings, start, days=1, pods=12, nodes=3, generation=0, step=900)  # workloads 0-2, nodes 0-2
    store_days(settings, start + DAY, days=3, pods=8, nodes=2, generation=1, step=900)  # workload 2, node-2 gone

    apply_retention(settings, clock)  # day 0 is past the hourly retention, day 1-2 rolled up

    conn = open_store(settings)
    pods = {row[0] for row in conn.execute("SELECT name FROM pods")}
    workloads = {row[0] for row in conn.execute("SELECT name FROM workloads")}
    nodes = {row[0] for row in conn.execute("SELECT name FROM nodes")}
    containers = conn.execute("SELECT COUNT(*) FROM containers").fetchone()[0]
    orphans = foreign_key_violations(conn)
    conn.close()
    assert all("-g1-" in name for name in pods) and len(pods) == 8
    assert workloads == {"app-0", "app-1"}
    assert nodes == {"node-0", "node-1"}
    assert containers == 3  # app-0: app + sidecar, app-1: app
    assert orphans == []


def test_containers_with_daily_rollups_are_kept(tmp_path, clock, monkeypatch):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=2)
    start = day_start(clock.now) - 4 * DAY
    store_days(settings, start, days=1, pods=12, generation=0, step=900)
    store_days(settings, start + DAY, days=3, pods=8, generation=1, step=900)
    conn = open_store(settings)
    fold_samples(conn, clock.now, 90)  # the report's day rows, kept 90 days here
    conn.close()

    # the pass's own fold would prune day rows at RETENTION_HOURLY_DAYS: keep them, as a longer
    # daily retention would, to see that identities still referenced by day rows survive
    monkeypatch.setattr("shared.store.retention.fold_samples", lambda *args: FoldResult())
    apply_retention(settings, clock)

    conn = open_store(settings)
    workloads = {row[0] for row in conn.execute("SELECT name FROM workloads")}
    orphans = foreign_key_violations(conn)
    conn.close()
    assert workloads == {"app-0", "app-1", "app-2"}  # app-2 has no samples or hourly rollups, but day rows
    assert orphans == []


def test_identities_still_in_rollups_are_kept(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=3)
    start = day_start(clock.now) - 3 * DAY
    store_days(settings, start, days=1, pods=12, generation=0, step=900)
    store_days(settings, start + DAY, days=2, pods=8, generation=1, step=900)

    apply_retention(settings, clock)

    conn = open_store(settings)
    workloads = {row[0] for row in conn.execute("SELECT name FROM workloads")}
    pods_of_generation_0 = conn.execute("SELECT COUNT(*) FROM pods WHERE name LIKE '%-g0-%'").fetchone()[0]
    conn.close()
    assert workloads == {"app-0", "app-1", "app-2"}  # app-2's rollups are within the 3 days
    assert pods_of_generation_0 == 0  # but its pods have no raw samples any more


def _file_digests(settings: Settings) -> list[str]:
    paths = [settings.database_path, settings.database_path.with_name(settings.database_path.name + "-wal")]
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()]


def test_a_pass_with_nothing_to_do_writes_nothing(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=2)
    store_days(settings, day_start(clock.now) - 3 * DAY, days=3, step=900)
    assert apply_retention(settings, clock).deleted_rows > 0
    before = _file_digests(settings)

    result = apply_retention(settings, clock)

    assert result == RetentionResult(seconds=result.seconds)
    assert _file_digests(settings) == before


class _CountdownDeadline:
    """A deadline that runs out after a fixed number of checks, to cut passes short deterministically."""

    checks_per_pass = 7

    def __init__(self, seconds: float | None):
        self.left = self.checks_per_pass

    def remaining(self) -> float:
        self.left -= 1
        return 1.0 if self.left >= 0 else 0.0


def _rows(settings: Settings, table: str) -> list[tuple]:
    conn = open_store(settings)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


@pytest.mark.sqlite_only("compares two copies of the SQLite file")
def test_passes_cut_short_resume_to_the_same_result_as_one_pass(tmp_path, clock, monkeypatch):
    overrides = {"retention_raw_days": 1, "retention_hourly_days": 2, "retention_batch_rows": 100}
    whole, pieces = make_settings(tmp_path / "whole", **overrides), make_settings(tmp_path / "pieces", **overrides)
    store_days(whole, day_start(clock.now) - 3 * DAY, days=3, pods=12)
    pieces.database_path.parent.mkdir(parents=True)
    shutil.copy(whole.database_path, pieces.database_path)
    in_one_pass = apply_retention(whole, clock)

    with monkeypatch.context() as patched:
        patched.setattr(retention_module, "Deadline", _CountdownDeadline)
        passes = [apply_retention(pieces, clock, budget_seconds=1.0)]
        while not passes[-1].complete:
            passes.append(apply_retention(pieces, clock, budget_seconds=1.0))

    assert len(passes) > 5
    assert sum(p.hours_rolled_up for p in passes) == in_one_pass.hours_rolled_up > 0
    for table in ("hourly_rollups", "samples", "node_samples", "runs"):
        assert _rows(whole, table) == _rows(pieces, table), table
    # identities a cut-short pass left behind go with the next pass that deletes anything
    clock.advance(HOUR)
    apply_retention(whole, clock)
    apply_retention(pieces, clock)
    for table in ("hourly_rollups", "samples", "runs", "pods", "containers", "workloads", "nodes"):
        assert _rows(whole, table) == _rows(pieces, table), table


def test_rollups_are_kept_at_least_as_long_as_raw_samples(tmp_path):
    settings = make_settings(tmp_path, retention_raw_days=10, retention_hourly_days=5)
    limits = cutoffs(settings, 100 * DAY + 1234)
    assert limits.raw_before == limits.hourly_before == 90 * DAY


def test_a_successful_collection_runs_retention_afterwards(settings, clock):
    store_days(settings, day_start(clock.now) - 9 * DAY, days=1, step=900)  # older than RETENTION_RAW_DAYS (7)
    old = cutoffs(settings, clock.now).raw_before

    body, status = collect_once(settings, Trigger("cli"), clock=clock)

    assert (status, body["status"]) == (200, "ok")
    assert count(settings, f"SELECT COUNT(*) FROM {SAMPLES} WHERE {SAMPLE_TS} < ?", old) == 0
    assert count(settings, "SELECT COUNT(*) FROM hourly_rollups") > 0
    assert count(settings, "SELECT COUNT(*) FROM samples WHERE run_id = ?", body["run_id"]) == body["containers"]


def test_cli_retention_reports_what_it_did(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    store_days(settings, day_start(time.time()) - 9 * DAY, days=1, step=1800)
    samples = count(settings, "SELECT COUNT(*) FROM samples")
    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    if settings.database_url is not None:
        monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
        monkeypatch.setenv("CLUSTER_NAME", settings.cluster_name)

    assert main(["retention"]) == 0

    out = capsys.readouterr().out
    assert "24 hours rolled up" in out and f"deleted {samples} samples" in out
    assert count(settings, "SELECT COUNT(*) FROM samples") == 0


def test_cli_retention_on_a_missing_database_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nothing.db"))

    assert main(["retention"]) == 1

    assert "does not exist yet" in capsys.readouterr().err


def test_each_pass_folds_new_samples_into_the_daily_rollups_first(tmp_path, clock):
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=30)
    start = day_start(clock.now) - 3 * DAY
    store_days(settings, start, days=3, pods=4, generation=0, step=3600)

    apply_retention(settings, clock)

    conn = open_store(settings)
    folded_run_id, = conn.execute("SELECT folded_run_id FROM daily_rollup_progress").fetchone()
    newest_run, = conn.execute("SELECT MAX(id) FROM runs").fetchone()
    folded = conn.execute("SELECT SUM(samples) FROM daily_rollups").fetchone()[0]
    days = conn.execute("SELECT COUNT(DISTINCT day) FROM daily_rollups").fetchone()[0]
    conn.close()
    assert folded_run_id == newest_run
    assert folded == 3 * 24 * 8  # every stored sample (4 pods, app and sidecar, hourly), also those deleted since
    assert days == 3


def test_what_runs_saw_of_hpas_goes_with_the_raw_samples(tmp_path, clock):
    """HPA samples and listings are deleted with the raw samples of their runs; a declaration (bounds,
    metrics) no kept run saw goes with them, and an HPA no declaration is left of."""
    settings = make_settings(tmp_path, retention_raw_days=1, retention_hourly_days=3)
    start = day_start(clock.now) - 3 * DAY

    def hpa(name: str, max_replicas: int) -> HpaRecord:
        return HpaRecord("default", name, "Deployment", "app-0", 1, max_replicas, 2, 2, [])

    conn = open_store(settings)
    rng = random.Random(7)
    for number in range(3 * 24):  # hourly runs over three days; "web" is allowed 6 replicas from the second
        inventory = synthetic_inventory(4)
        inventory.hpas = [hpa("web", 4 if number < 24 else 6)] + ([hpa("old", 3)] if number < 12 else [])
        store_synthetic_run(conn, inventory, start + number * HOUR, rng)
    conn.close()

    apply_retention(settings, clock)

    raw_before = cutoffs(settings, clock.now).raw_before
    conn = open_store(settings)
    first_kept_run = conn.execute(f"SELECT MIN(s.run_id) FROM {SAMPLES}").fetchone()[0]
    hpa_runs = [row[0] for row in conn.execute("SELECT DISTINCT run_id FROM hpa_samples ORDER BY 1")]
    listing_runs = [row[0] for row in conn.execute("SELECT run_id FROM hpa_listings ORDER BY 1")]
    declarations = conn.execute("SELECT h.name, s.max_replicas FROM hpa_specs s JOIN hpas h ON h.id = s.hpa_id"
                                " ORDER BY 1, 2").fetchall()
    hpas = [row[0] for row in conn.execute("SELECT name FROM hpas ORDER BY 1")]
    orphans = foreign_key_violations(conn)
    oldest = conn.execute("SELECT MIN(r.started_at) FROM hpa_samples s JOIN runs r ON r.id = s.run_id").fetchone()[0]
    conn.close()
    assert hpa_runs[0] == listing_runs[0] == first_kept_run and oldest >= raw_before - HOUR
    assert len(hpa_runs) == len(listing_runs) < 3 * 24
    assert declarations == [("web", 6)] and hpas == ["web"]
    assert orphans == []
