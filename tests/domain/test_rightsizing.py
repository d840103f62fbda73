"""Rightsizing recommendations: the rules, their floors, and the sentence behind each value."""

from __future__ import annotations

import random
from pathlib import Path

from shared.cli import main
from shared.core.formats import format_bytes, format_duration, format_millicores
from shared.core.settings import load_settings
from shared.domain.rightsizing import (
    RightsizingPolicy,
    UsageEvidence,
    recommend,
)
from shared.ops.backup import list_backups
from shared.store.connection import connect
from tests.support.synthetic_history import store_synthetic_run, synthetic_inventory

MiB = 1024**2
WEEK = 7 * 86_400
POLICY = RightsizingPolicy(cpu_percentile=95, memory_headroom=0.15, cpu_floor_millicores=10,
                           memory_floor_bytes=16 * MiB, min_samples=12)


def evidence(**changes: object) -> UsageEvidence:
    values: dict[str, object] = dict(covered_seconds=WEEK, cpu_samples=2016, cpu_percentile_millicores=183.2,
                                     cpu_percentile_exact=True, memory_samples=2016,
                                     memory_working_set_max_bytes=400 * MiB)
    values.update(changes)
    return UsageEvidence(**values)  # type: ignore[arg-type]


def test_cpu_request_is_the_usage_percentile_rounded_up_to_a_millicore() -> None:
    r = recommend(evidence(), POLICY)
    assert r.cpu_request_millicores == 184
    assert r.cpu_reason == "p95 of 2016 samples over 7d"


def test_cpu_request_read_from_histograms_says_how_close_it_is() -> None:
    r = recommend(evidence(cpu_percentile_exact=False), POLICY)
    assert r.cpu_request_millicores == 184
    assert r.cpu_reason == "p95 of 2016 samples over 7d (from usage histograms, within 4.4%)"


def test_cpu_request_never_goes_below_the_floor() -> None:
    r = recommend(evidence(cpu_percentile_millicores=2.4), POLICY)
    assert r.cpu_request_millicores == 10
    assert r.cpu_reason == "floor of 10m: p95 of 2016 samples over 7d is 2m"


def test_memory_request_and_limit_are_the_peak_plus_headroom_in_whole_mebibytes() -> None:
    exact = recommend(evidence(memory_working_set_max_bytes=400 * MiB), POLICY)
    assert exact.memory_request_bytes == exact.memory_limit_bytes == 460 * MiB
    assert exact.memory_reason == "max working set 400Mi over 7d (2016 samples) + 15% headroom"
    rounded_up = recommend(evidence(memory_working_set_max_bytes=100 * MiB + 1), POLICY)
    assert rounded_up.memory_request_bytes == 116 * MiB  # 115.000001 MiB


def test_memory_never_goes_below_the_floor() -> None:
    r = recommend(evidence(memory_working_set_max_bytes=3 * MiB), POLICY)
    assert r.memory_request_bytes == r.memory_limit_bytes == 16 * MiB
    assert r.memory_reason.startswith("floor of 16Mi: max working set 3Mi over 7d")


def test_too_few_samples_give_no_recommendation_but_the_reason() -> None:
    r = recommend(evidence(covered_seconds=3300, cpu_samples=11, memory_samples=0,
                           memory_working_set_max_bytes=None), POLICY)
    assert r.cpu_request_millicores is None and r.memory_request_bytes is None and r.memory_limit_bytes is None
    assert r.cpu_reason == ("not enough data: 11 CPU usage samples over 55min, at least 12 needed "
                            "(REPORT_MIN_SAMPLES); keep collecting or widen the window")
    assert r.memory_reason.startswith("not enough data: 0 memory usage samples over 55min")


def test_the_policy_comes_from_the_report_settings(tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "db", report_cpu_percentile=90, report_memory_headroom=0.25,
                             report_cpu_floor_millicores=50, report_memory_floor_bytes=64 * MiB,
                             report_min_samples=100)
    policy = RightsizingPolicy.from_settings(settings)
    assert policy == RightsizingPolicy(90, 0.25, 50, 64 * MiB, 100)
    r = recommend(evidence(), policy)
    assert r.cpu_reason == "p90 of 2016 samples over 7d"
    assert r.memory_request_bytes == 500 * MiB


def test_numbers_are_written_as_kubernetes_quantities() -> None:
    assert [format_millicores(v) for v in (None, 0, 249.6, 1500)] == ["-", "0m", "250m", "1500m"]
    assert [format_bytes(v) for v in (None, 512, 900 * 1024, 512 * MiB, 1536 * MiB, 1024**3)] == \
        ["-", "512", "900Ki", "512Mi", "1.5Gi", "1Gi"]
    assert [format_duration(s) for s in (600, 5 * 3600, 36 * 3600, WEEK)] == ["10min", "5h", "1.5d", "7d"]


def test_backups_are_listed_with_sizes_written_as_the_report_writes_them(tmp_path: Path, monkeypatch, capsys) -> None:
    database = tmp_path / "data" / "k8s_metrics.db"
    database.parent.mkdir()
    conn = connect(database)
    store_synthetic_run(conn, synthetic_inventory(40), 1_767_225_600, random.Random(1))
    conn.close()
    monkeypatch.setenv("DATABASE_PATH", str(database))
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    assert main(["backup"]) == 0
    made = capsys.readouterr().out
    assert main(["backups", "--no-verify"]) == 0
    listed = capsys.readouterr().out

    size = format_bytes(list_backups(tmp_path / "backups", verify=False)[0].size_bytes)
    assert size.endswith("Ki") and f": {size} in " in made
    assert f"  {size}  " in listed.splitlines()[1]
