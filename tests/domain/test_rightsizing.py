"""Rightsizing recommendations: the rules, their floors, and the sentence behind each value."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from shared.cli import main
from shared.core.formats import format_bytes, format_duration, format_millicores
from shared.core.settings import load_settings
from shared.domain.rightsizing import (
    Current,
    RightsizingPolicy,
    UsageEvidence,
    ignored,
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


# --- OOM kills, HPAs, the noise filter, limits and confidence: hand-computed cases ----------------------------------


def current(cpu_request: int | None = 500, cpu_limit: int | None = 1000, memory_request: int | None = 512 * MiB,
            memory_limit: int | None = 512 * MiB) -> Current:
    return Current(cpu_request, cpu_limit, memory_request, memory_limit)


def test_an_oom_killed_container_gets_its_limit_times_1_2_named_with_its_oom_events() -> None:
    r = recommend(evidence(current=current(), oom_kills="3 OOM events"), POLICY)
    # 512Mi x 1.2 = 614.4Mi, above 512Mi + 100Mi = 612Mi and above 400Mi + 15% = 460Mi; whole MiB: 615Mi
    assert r.memory_request.recommended == r.memory_limit.recommended == 615 * MiB
    assert (r.memory_request.action, r.memory_limit.action) == ("raise", "raise")
    assert r.memory_reason == ("OOM-killed in the window (3 OOM events): at least its limit 512Mi x 1.2 and at least "
                               "+100Mi (the VPA's OOM bump)")


def test_the_oom_bump_is_at_least_100_mib_and_peak_plus_headroom_when_that_is_higher() -> None:
    small = recommend(evidence(current=current(memory_request=100 * MiB, memory_limit=100 * MiB),
                               memory_working_set_max_bytes=90 * MiB, oom_kills="1 OOM events"), POLICY)
    assert small.memory_request.recommended == 200 * MiB  # 100Mi x 1.2 = 120Mi < 100Mi + 100Mi
    peak = recommend(evidence(current=current(memory_request=256 * MiB, memory_limit=256 * MiB),
                              memory_working_set_max_bytes=320 * MiB, oom_kills="1 OOM events"), POLICY)
    assert peak.memory_request.recommended == 368 * MiB  # 320Mi x 1.15 = 368Mi > max(307.2Mi, 356Mi)
    assert peak.memory_reason.startswith("OOM-killed in the window (1 OOM events): max working set 320Mi + 15% "
                                         "headroom, above its limit 256Mi x 1.2")


def test_an_oom_killed_container_never_gets_less_than_its_limit_whatever_the_ceiling_or_samples() -> None:
    capped = recommend(evidence(current=current(), oom_kills="2 OOM events"),
                       replace(POLICY, memory_max_bytes=300 * MiB))
    assert capped.memory_request.recommended == 615 * MiB
    assert capped.memory_reason.endswith("; the ceiling of 300Mi is not applied: never less than an OOM-killed "
                                         "container needs")
    few = recommend(evidence(current=current(), oom_kills="last termination reason OOMKilled", memory_samples=3),
                    POLICY)
    assert few.memory_request.recommended == 615 * MiB  # too few samples for a peak, not for the bump
    no_limit = recommend(evidence(current=current(memory_request=256 * MiB, memory_limit=None),
                                  memory_working_set_max_bytes=300 * MiB, oom_kills="1 OOM events"), POLICY)
    assert no_limit.memory_request.recommended == 400 * MiB  # from the peak 300Mi: max(360Mi, 400Mi)
    assert "at least its peak working set 300Mi x 1.2" in no_limit.memory_reason


def test_a_request_an_hpa_scales_on_is_kept_unless_allowed_and_the_reason_says_why() -> None:
    hpa = {"cpu": "HPA web scales the workload on CPU utilisation 70%"}
    held = recommend(evidence(current=current(), hpa_scaling=hpa), POLICY)
    assert (held.cpu_request.action, held.cpu_request.recommended, held.cpu_request.computed) == ("keep", 500, 184)
    assert held.cpu_reason == (
        "keep 500m: HPA web scales the workload on CPU utilisation 70%, so a new request changes when it scales; "
        "usage calls for 184m (p95 of 2016 samples over 7d). Set REPORT_ALLOW_HPA=true (or the annotation "
        "k8s-monitor.io/allow-hpa: \"true\") to recommend it anyway")
    assert held.memory_request.action == "lower"  # the HPA scales on CPU only
    allowed = recommend(evidence(current=current(), hpa_scaling=hpa), replace(POLICY, allow_hpa=True))
    assert (allowed.cpu_request.action, allowed.cpu_request.recommended) == ("lower", 184)
    assert allowed.cpu_reason.endswith("; HPA web scales the workload on CPU utilisation 70%: its scaling changes "
                                       "with the request (REPORT_ALLOW_HPA)")


@pytest.mark.parametrize(("request_millicores", "action", "recommended"), [
    (190, "keep", 190), (204, "keep", 204), (205, "lower", 184), (168, "keep", 168), (167, "raise", 184),
])
def test_a_change_within_the_min_change_ratio_is_keep(request_millicores: int, action: str, recommended: int) -> None:
    # computed 184m: within 10 % of the request when |184 - request| <= request / 10
    r = recommend(evidence(current=current(cpu_request=request_millicores)), POLICY)
    assert (r.cpu_request.action, r.cpu_request.recommended) == (action, recommended)


@pytest.mark.parametrize(("policy", "limit_millicores", "action", "recommended"), [
    ("keep", 1000, "keep", 1000),
    ("keep", 150, "raise", 184),  # a limit below the new request would be invalid
    ("none", 1000, "remove", None),
    ("none", None, "keep", None),
    ("ratio:2", 1000, "lower", 368),
    ("ratio:2", 350, "keep", 350),  # 368m is within 10 % of 350m
    ("ratio:1.5", None, "set", 276),
])
def test_the_cpu_limit_follows_the_cpu_limit_policy(policy: str, limit_millicores: int | None, action: str,
                                                     recommended: int | None) -> None:
    r = recommend(evidence(current=current(cpu_limit=limit_millicores)), replace(POLICY, cpu_limit_policy=policy))
    assert (r.cpu_limit.action, r.cpu_limit.recommended) == (action, recommended)


def test_the_memory_limit_follows_the_memory_limit_policy() -> None:
    equal = recommend(evidence(current=current(memory_request=256 * MiB, memory_limit=1024 * MiB)), POLICY)
    assert (equal.memory_request.action, equal.memory_request.recommended) == ("raise", 460 * MiB)
    assert (equal.memory_limit.action, equal.memory_limit.recommended) == ("lower", 460 * MiB)
    kept = recommend(evidence(current=current(memory_request=256 * MiB, memory_limit=1024 * MiB)),
                     replace(POLICY, memory_limit_policy="keep"))
    assert (kept.memory_limit.action, kept.memory_limit.recommended) == ("keep", 1024 * MiB)
    raised = recommend(evidence(current=current(memory_request=256 * MiB, memory_limit=300 * MiB)),
                       replace(POLICY, memory_limit_policy="keep"))
    assert (raised.memory_limit.action, raised.memory_limit.recommended) == ("raise", 460 * MiB)
    # the request is kept (within 10 %), the limit still follows what usage calls for and never goes below it
    noise = recommend(evidence(current=current(memory_request=450 * MiB, memory_limit=2048 * MiB)), POLICY)
    assert (noise.memory_request.action, noise.memory_limit.action, noise.memory_limit.recommended) == \
        ("keep", "lower", 460 * MiB)


@pytest.mark.parametrize(("days", "samples", "confidence", "low"), [
    (7, 2016, 1.0, False), (14, 5000, 1.0, False), (3.5, 2016, 0.5, False), (7, 1008, 0.5, False),
    (1, 2016, 0.14, True), (7, 100, 0.05, True),
])
def test_confidence_is_the_smaller_of_days_over_a_week_and_samples_over_a_week_of_samples(
        days: float, samples: int, confidence: float, low: bool) -> None:
    r = recommend(evidence(span_seconds=days * 86_400, cpu_samples=samples, memory_samples=samples), POLICY)
    assert (r.confidence, r.low_confidence) == (confidence, low)
    assert r.confidence_reason.startswith(f"min(1, {format_duration(days * 86_400)} of history / 7d, {samples} "
                                          f"samples / 2016) = {confidence:.2f}")


def test_an_ignored_workload_keeps_everything() -> None:
    r = ignored(current(), 'k8s-monitor.io/ignore: "true"')
    assert not r.changes
    assert [a.recommended for a in r.advice.values()] == [500, 1000, 512 * MiB, 512 * MiB]
    assert r.cpu_reason == 'ignored: k8s-monitor.io/ignore: "true"'
