"""One code path's side of benchmarks/collect.py, in a process of its own: collect, measure, print.

It imports `shared` from whichever tree is first on sys.path (this one or a baseline's export) and
uses only what every revision has (load_settings, collect_once, KubeClient, read_inventory), so one
script measures both. Each measurement is printed as a line `BENCH {json}` (the collector's own
logs also go to stdout). The peak RSS of a run is the process's high-water mark after the run, reset
before it through /proc/self/clear_refs, so each run's figure is its own.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFIX = "BENCH "


def run(tree: Path, kubeconfig: Path, prometheus_url: str, runs: int, inventory_runs: int, profile: bool) -> None:
    import shared  # noqa: PLC0415 - from the tree first on sys.path

    if not Path(shared.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"imported shared from {shared.__file__}, not from {tree}")
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as workdir:
        settings = _settings(Path(workdir) / "k8s_metrics.db", kubeconfig, prometheus_url)
        try:
            for number in range(1, inventory_runs + 1):  # first: the heap holds nothing of a collection yet
                _emit("inventory", run=number, **_measured(lambda: _read_inventory(settings)))
            for number in range(1, runs + 1):
                _emit("collect", run=number, **_collect(settings))
            if profile:
                _emit("profile", what="one collection (every thread)", text=_profiled(lambda: _collect(settings)))
                _emit("profile", what="the Kubernetes part", text=_profiled(lambda: _read_inventory(settings)))
        except ModuleNotFoundError as exc:  # a baseline from before a dependency was dropped (kubernetes)
            raise SystemExit(f"the code in {tree} imports {exc.name!r}, which this environment no longer has: "
                             f"install what that revision's requirements.txt pins into it") from None


def _settings(database: Path, kubeconfig: Path, prometheus_url: str) -> Any:
    from shared.core.settings import load_settings  # noqa: PLC0415

    return load_settings(
        database_path=database, kubeconfig=kubeconfig, kube_context=None, prometheus_url=prometheus_url,
        namespaces_include=(), namespaces_exclude=(), pod_namespace="", log_level="WARNING",
        # simulated alerts stay in the benchmark's database: never to a real Slack, mailbox or sink
        slack_webhook_url=None, slack_webhook_url_file=None, webhook_url=None, webhook_url_file=None,
        smtp_host=None, k_sink=None,
        # the simulated Prometheus evaluates PromQL in Python: at 100k pods a query takes tens of seconds
        # (a real one, one or two), and a run cut short by the default timeout would measure half a run
        prometheus_timeout_seconds=300, collect_budget_seconds=1800,
    )


def _collect(settings: Any) -> dict[str, Any]:
    from shared.entry.collect import collect_once  # noqa: PLC0415
    from shared.entry.triggers import Trigger  # noqa: PLC0415

    used_before = _used_bytes(settings.database_path)
    figures = _measured(lambda: collect_once(settings, Trigger("cli"))[0])
    body = figures.pop("result")
    timings = body.get("timings") or {}
    return {**figures, "status": body["status"], "error": body.get("error"), "pods": body.get("pods"),
            "containers": body.get("containers"), "kubernetes_requests": body.get("kubernetes_requests"),
            "prometheus_queries": body.get("prometheus_queries"),
            "kubernetes_seconds": timings.get("kubernetes_seconds"),
            "prometheus_seconds": timings.get("prometheus_seconds"),
            "stored_bytes": _used_bytes(settings.database_path) - used_before}


def _read_inventory(settings: Any) -> dict[str, Any]:
    from shared.sources.inventory import read_inventory  # noqa: PLC0415
    from shared.sources.kube import KubeClient  # noqa: PLC0415

    try:
        from shared.sources.kube_credentials import load_credentials  # noqa: PLC0415
    except ImportError:  # a baseline from before kube_credentials.py
        from shared.sources.kube import load_credentials  # type: ignore[attr-defined,no-redef]  # noqa: PLC0415

    with KubeClient(load_credentials(settings), settings) as kube:
        inventory = read_inventory(kube, None, (), settings.kube_page_size)
        return {"result": None, "pods": len(inventory.pods), "kubernetes_requests": kube.stats.requests,
                "kubernetes_seconds": kube.stats.seconds}


def _measured(work: Callable[[], Any]) -> dict[str, Any]:
    """Wall, CPU (user+sys, every thread) and peak RSS of `work`, with what it returned."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark (VmHWM, ru_maxrss)
    before, wall_started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = work()
    wall, after = time.perf_counter() - wall_started, resource.getrusage(resource.RUSAGE_SELF)
    figures = {"wall_seconds": wall,
               "cpu_seconds": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
               "peak_rss_mb": after.ru_maxrss / 1024}
    if isinstance(result, dict) and "result" in result:
        return {**figures, **result}
    return {**figures, "result": result}


def _used_bytes(database: Path) -> int:
    if not database.exists():
        return 0
    conn = sqlite3.connect(database)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


def _profiled(work: Callable[[], Any], top: int = 15) -> str:
    """The top functions by own time while `work` runs, over its thread and the threads it starts."""
    profiles = [cProfile.Profile()]

    def profile_new_thread(*_: object) -> None:
        sys.setprofile(None)
        profiles.append(cProfile.Profile())
        profiles[-1].enable()

    threading.setprofile(profile_new_thread)
    profiles[0].enable()
    try:
        work()
    finally:
        profiles[0].disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for other in profiles[1:]:
        stats.add(other)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    first = next(number for number, line in enumerate(lines) if "function calls" in line)
    return "\n".join("    " + line for line in lines[first:])


def _emit(kind: str, **record: Any) -> None:
    print(PREFIX + json.dumps({"kind": kind, **record}), flush=True)
