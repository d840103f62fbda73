"""`k8s-monitor report`: the report in a terminal (a table that fits 80 columns), or as JSON or CSV.

The filters are the report function's query parameters as options (--namespace, --workload,
--window, --sort, --limit), checked the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time

from shared.cli import cli_settings
from shared.core.formats import format_bytes, format_cores, format_duration, utc_minute
from shared.core.settings import Settings
from shared.domain.errors import InvalidInput
from shared.domain.report.build import NO_DATA, Report, build_report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.output import report_csv, report_json
from shared.domain.report.query import SORTS, ReportQuery, parse_report_query

DEFAULT_LIMITS = {"table": "30", "json": "100", "csv": "all"}
NAME_WIDTH = 28
FLAG_LETTERS = {"oom_killed": "O", "cpu_throttled": "T", "memory_near_limit": "M", "no_requests": "R",
                "no_limits": "L"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor report`, the report function's query parameters."""
    parser.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table",
                        help="table (default, 80 columns), json or csv")
    parser.add_argument("--namespace", "-n", help="only this namespace")
    parser.add_argument("--workload", "-w", help="only this workload: name or Kind/name")
    parser.add_argument("--window", help="24h, 7d, 2w ... (default REPORT_WINDOW_DAYS days); a day or more "
                                         "starts at a UTC midnight")
    parser.add_argument("--sort", choices=tuple(SORTS), help="order of the containers (default idle_cpu)")
    parser.add_argument("--cluster", help="PostgreSQL: this cluster's report (default CLUSTER_NAME)")
    parser.add_argument("--fleet", action="store_true",
                        help="one row per cluster in the store (stale first), as a table or JSON")
    parser.add_argument("--limit", help="containers to list, or 'all' (default: 30 in the table, 100 in JSON, "
                                        "all in CSV)")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 2 when an option is invalid, 0 otherwise."""
    from shared.store.connection import open_store

    settings = cli_settings()
    now = time.time()
    params = {name: value for name, value in (
        ("namespace", args.namespace), ("workload", args.workload), ("window", args.window), ("sort", args.sort),
        ("limit", args.limit or DEFAULT_LIMITS[args.format])) if value is not None}
    try:
        query = parse_report_query(params, settings, now)
    except InvalidInput as exc:
        print(f"k8s-monitor report: --{exc}", file=sys.stderr)
        return 2
    if args.fleet:
        return _print_fleet(settings, query, now, args.format)
    if args.cluster:
        settings = settings.model_copy(update={"cluster_name": args.cluster})
    conn = open_store(settings, readonly=True)
    try:
        report = build_report(conn, query, settings, now)
    finally:
        conn.close()
    if args.format == "json":
        print(json.dumps(report_json(report), indent=2))
    elif args.format == "csv":
        sys.stdout.write(report_csv(report))
    else:
        print(render_table(report))
    return 0


def _print_fleet(settings: Settings, query: ReportQuery, now: float, fmt: str) -> int:
    from shared.domain.report.fleet import build_fleet

    fleet = build_fleet(settings, query, now)
    if fmt == "json":
        print(json.dumps(fleet.as_dict(), indent=2))
        return 0
    if fmt == "csv":
        print("k8s-monitor report: --fleet is a table or JSON", file=sys.stderr)
        return 2
    w = query.window
    lines = [f"Fleet over {w.label}: {utc_minute(w.start).removesuffix(' UTC')} to {utc_minute(w.end)}", "",
             f"{'CLUSTER':<22}{'STATUS':<9}{'CPU req':>8}{'used':>7}{'idle':>7}{'mem req':>9}{'used':>8}{'idle':>8}"]
    for row in fleet.clusters:
        t = row.totals
        status = "error" if row.error else "stale" if row.stale else "ok"
        lines.append(f"{fit_name((row.cluster,), 21):<22}{status:<9}{_cpu(t.cpu_requested_millicores):>8}"
                     f"{_cpu(t.cpu_used_millicores):>7}{_cpu(t.cpu_idle_millicores):>7}"
                     f"{format_bytes(t.memory_requested_bytes):>9}{format_bytes(t.memory_used_bytes):>8}"
                     f"{format_bytes(t.memory_idle_bytes):>8}")
    print("\n".join(lines if fleet.clusters else [*lines, "(no cluster has stored a run yet)"]))
    return 0


def render_table(report: Report) -> str:
    """The report for an 80-column terminal: totals, then one line per container."""
    q, w, t = report.query, report.query.window, report.cluster
    data = f"{format_duration(report.covered_seconds)} of data" if report.covered_seconds else "no data"
    lines = [
        f"Cluster {report.cluster_name}",
        f"Report over {w.label}: {utc_minute(w.start).removesuffix(' UTC')} to {utc_minute(w.end)} ({data})",
        f"Cluster, on average: CPU requested {format_cores(t.cpu_requested_millicores)}, used "
        f"{format_cores(t.cpu_used_millicores)}, idle {format_cores(t.cpu_idle_millicores)}",
        f"  memory requested {format_bytes(t.memory_requested_bytes)}, used {format_bytes(t.memory_used_bytes)},"
        f" idle {format_bytes(t.memory_idle_bytes)}",
        f"{len(report.containers)} of {report.containers_total} containers, {SORTS[q.sort][1]}"
        + (f", namespace {q.namespace}" if q.namespace else "") + (f", workload {q.workload}" if q.workload else ""),
        "",
        f"{'':<{NAME_WIDTH}}{' CPU '.center(24, '-')}{' memory '.center(21, '-')}",
        f"{'NAMESPACE/WORKLOAD/CONTAINER':<{NAME_WIDTH}}{'req':>6}{'p95':>6}{'rec':>6}{'idle':>6}"
        f"{'req':>7}{'peak':>7}{'rec':>7} FLAGS",
    ]
    empty = "(no samples match these filters in this window)" if report.covered_seconds else textwrap.fill(NO_DATA, 80)
    lines += [_row(c) for c in report.containers] or [empty]
    lines += ["", *(f"Warning: {warning}" for warning in report.runs.warnings)] if report.runs.warnings else []
    lines += [
        "",
        "rec: recommended request (memory: request and limit); ?: not enough data.",
        "idle: CPU requested but unused, every pod together. p95, peak: per pod.",
        "Flags: O OOMKilled, T CPU throttled, M memory near limit, R no requests,",
        "L no limits. `--format json` gives every number with its reason.",
    ]
    return "\n".join(lines)


def _row(c: ExplainedContainer) -> str:
    r = c.recommendation
    flags = "".join(FLAG_LETTERS[f.flag] for f in c.flags)
    cpu_rec = "?" if r.cpu_request_millicores is None else _cpu(r.cpu_request_millicores)
    memory_rec = "?" if r.memory_request_bytes is None else format_bytes(r.memory_request_bytes)
    return (f"{fit_name((c.namespace, c.workload_name, c.container), NAME_WIDTH - 1):<{NAME_WIDTH}}"
            f"{_cpu(c.cpu_request_millicores):>6}{_cpu(c.cpu_usage_p95_millicores):>6}{cpu_rec:>6}"
            f"{_cpu(c.cpu_idle_millicores):>6}{format_bytes(c.memory_request_bytes):>7}"
            f"{format_bytes(c.memory_working_set_max_bytes):>7}{memory_rec:>7} {flags}").rstrip()


def _cpu(millicores: float | None) -> str:
    """`250m` below a core, `1.5` cores above (as kubectl writes CPU)."""
    if millicores is None:
        return "-"
    return f"{round(millicores)}m" if millicores < 999.5 else f"{millicores / 1000:.1f}".removesuffix(".0")


def fit_name(parts: tuple[str, ...], width: int) -> str:
    """`namespace/workload/container` in `width` characters: the longest parts lose their ends first
    (marked `~`), so each part keeps its beginning."""
    lengths = [len(part) for part in parts]
    while sum(lengths) + len(parts) - 1 > width and max(lengths) > 1:
        lengths[lengths.index(max(lengths))] -= 1
    return "/".join(part if len(part) <= size else part[:size - 1] + "~" for part, size in zip(parts, lengths))
