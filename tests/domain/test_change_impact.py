"""Change impact: a history with a known change of requests and limits, and every figure before and after it by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli.report import render_table
from shared.core.settings import Settings, load_settings
from shared.domain.alerts.evaluation import evaluate_rules
from shared.domain.change_impact import Declared, change_times
from shared.domain.report.build import build_report
from shared.domain.report.output import report_csv, report_json
from shared.domain.report.query import parse_report_query
from shared.store.connection import open_store, transaction
from shared.store.dialect import Connection
from shared.store.resource_history import DeclaredSpan
from tests.conftest import BACKENDS
from tests.support.report_history import History, Sample

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

MiB = 1024**2
T0 = 1_768_089_600  # 2026-01-11T00:00:00Z: the first run
STEP = 300
CHANGE = T0 + 24 * STEP  # 02:00, the first run that sees the new pod
END = T0 + 48 * STEP  # the runs end at 03:55
OLD = dict(cpu_request_millicores=500, cpu_limit_millicores=1000, memory_request_bytes=256 * MiB,
           memory_limit_bytes=512 * MiB)
NEW = dict(OLD, cpu_request_millicores=250, cpu_limit_millicores=300)


def old_pod(run: int) -> Sample:
    """pod-a, before the rollout and for its first two runs: CPU 100m + 1m a run, memory 200Mi + 1Mi a run."""
    return Sample(cpu_usage_avg_millicores=100 + run, memory_working_set_max_bytes=(200 + run) * MiB,
                  cpu_throttled_ratio=0.05, pod="pod-a", phase="Succeeded" if run == 26 else "Running", **OLD)


def new_pod(run: int) -> Sample:
    """pod-b, from the change: CPU 200m + 2m a run, memory 300Mi, throttled 40 %; OOM-killed once at run 30
    (restart count 0 -> 1, one OOM event), then two restarts with reason Error at run 40."""
    restarts = 0 if run < 30 else 1 if run < 40 else 3
    return Sample(cpu_usage_avg_millicores=200 + 2 * (run - 24), memory_working_set_max_bytes=300 * MiB,
                  cpu_throttled_ratio=0.4, restart_count=restarts, oom_events=1 if run == 30 else 0,
                  last_termination_reason=None if run < 30 else "OOMKilled" if run < 40 else "Error", pod="pod-b",
                  **NEW)


@pytest.fixture
def db(tmp_path: Path, backend: dict[str, object]) -> Iterator[tuple[Connection, Settings]]:
    settings = load_settings(database_path=tmp_path / "k8s_metrics.db", alert_resource_change_hurt=True, **backend)
    conn = open_store(settings)
    history = History(conn)
    with transaction(conn):
        app = history.container("shop", "Deployment", "api", "app")
        for run in range(48):  # in time order, as a collector writes them
            ts = T0 + run * STEP
            if run < 27:  # the old pod lives on for three runs of the rollout, the last one Succeeded (a new span)
                history.add(app, ts, old_pod(run))
            if run >= 24:
                history.add(app, ts, new_pod(run))
    yield conn, settings
    conn.close()


def test_every_figure_before_and_after_a_known_change(db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    now = END + 1
    body = report_json(build_report(conn, parse_report_query({"window": "6h"}, settings, now), settings, now))
    (container,) = body["containers"]
    (change,) = container["changes"]  # the old pod's phase change is no change of requests
    # the window is [END + 2 - 6h, END + 2) but the raw samples begin at T0: the change is 2h after T0 and
    # 2h + 2s before the window's end, so both windows are 2h
    length = min(24 * 3600, CHANGE - max(T0, now + 1 - 6 * 3600), (now + 1) - CHANGE)
    assert length == 2 * 3600
    assert change["at"] == "2026-01-11T02:00:00Z"
    assert change["changed"] == ["CPU request 500m -> 250m", "CPU limit 1000m -> 300m"]
    assert (change["old"], change["new"]) == (OLD, NEW)
    assert change["window_seconds"] == length
    assert change["before"] == {
        "start": "2026-01-11T00:00:00Z", "end": "2026-01-11T02:00:00Z",
        "samples": 24,  # pod-a, runs 0 to 23
        "cpu_p95_millicores": 122,  # 100..123: the 23rd of 24 (nearest rank: ceil(0.95 x 24) = 23)
        "memory_peak_bytes": 223 * MiB, "cpu_throttled_ratio_avg": 0.05, "cpu_throttled_ratio_max": 0.05,
        "oom_kills": 0, "restarts": 0,
    }
    assert change["after"] == {
        "start": "2026-01-11T02:00:00Z", "end": "2026-01-11T04:00:00Z",
        # pod-a's runs 24 and 25 while Running (run 26 is Succeeded: no usage), pod-b's runs 24 to 47
        "samples": 26,
        # 124, 125, 200, 202, ..., 246: the 25th of 26 is 244
        "cpu_p95_millicores": 244, "memory_peak_bytes": 300 * MiB,
        "cpu_throttled_ratio_avg": round((2 * 0.05 + 24 * 0.4) / 26, 3), "cpu_throttled_ratio_max": 0.4,
        "oom_kills": 1,  # run 30: restart count 0 -> 1 with OOMKilled, and one OOM event: one kill
        "restarts": 3,  # 0 -> 1 at run 30, 1 -> 3 at run 40
    }
    assert change["worse"] == ["OOM kills 0 -> 1", "CPU throttling 5% -> 37% of periods on average"]
    rows = report_csv(build_report(conn, parse_report_query({"window": "6h"}, settings, now), settings, now))
    header, row = (line.split(",") for line in rows.splitlines()[:2])
    values = dict(zip(header, row, strict=False))
    assert values["changes"] == "1"
    assert values["newest_change"] == "2026-01-11T02:00:00Z CPU request 500m -> 250m; CPU limit 1000m -> 300m"


def test_the_terminal_table_says_what_followed_the_change(db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    table = render_table(build_report(conn, parse_report_query({"window": "6h"}, settings, END + 1), settings, END + 1))
    assert " ".join(table[table.index("Changed shop/api/app"):].split()).startswith(
        "Changed shop/api/app 2026-01-11 02:00 UTC: CPU request 500m -> 250m; CPU limit 1000m -> 300m; 2h before ->"
        " after: p95 122m -> 244m, peak 223Mi -> 300Mi, throttled 5% -> 37%, OOM kills 0 -> 1, restarts 0 -> 3")


def test_resource_change_hurt_fires_after_the_change_when_enabled(db: tuple[Connection, Settings]) -> None:
    conn, settings = db
    alerts = evaluate_rules(conn, settings, END + 60).alerts["ResourceChangeHurt"]
    assert alerts is not None and len(alerts) == 1
    alert = alerts[0]
    assert alert.labels == {"alertname": "ResourceChangeHurt", "severity": "warning", "namespace": "shop",
                            "workload_kind": "Deployment", "workload": "api", "container": "app",
                            "cluster": settings.cluster_name}
    assert alert.description.startswith(
        "Container app of Deployment shop/api changed at 2026-01-11 02:00 UTC (CPU request 500m -> 250m; CPU limit "
        "1000m -> 300m). In the 1.9h since, against the 1.9h before: OOM kills 0 -> 1; CPU throttling 5% -> 37% of "
        "periods on average.")
    off = settings.model_copy(update={"alert_resource_change_hurt": False})
    assert evaluate_rules(conn, off, END + 60).alerts["ResourceChangeHurt"] == []


def span(pod: int, ts: int, cpu: int) -> DeclaredSpan:
    return DeclaredSpan(pod, ts, (cpu, None, None, None))


def test_a_rollout_and_an_in_place_resize_are_changes_a_phase_or_an_old_pod_living_on_are_not() -> None:
    spans = [
        span(1, 100, 500), span(2, 100, 500),  # two pods
        span(3, 200, 250),  # rollout: a new pod with 250m
        span(1, 210, 500),  # an old pod changing phase: no change back
        span(4, 220, 250), span(3, 230, 250),  # another new pod; pod 3's phase changes
        span(4, 300, 400),  # in-place resize of pod 4
    ]
    assert change_times(spans) == [(200, Declared(500, None, None, None), Declared(250, None, None, None)),
                                   (300, Declared(250, None, None, None), Declared(400, None, None, None))]
