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
from collections.abc import Callable

from shared.cli import cli_settings
from shared.core.formats import format_bytes, format_cores, format_duration, utc_minute
from shared.core.settings import Settings
from shared.domain.errors import InvalidInput
from shared.domain.report.build import NO_DATA, Report, build_report
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.output import report_csv, report_json, report_patches
from shared.domain.report.query import SORTS, ReportQuery, parse_report_query
from shared.domain.rightsizing import KEEP, Advice

DEFAULT_LIMITS = {"table": "30", "json": "100", "csv": "all", "patch": "all"}
NAME_WIDTH = 22
FLAG_LETTERS = {"oom_killed": "O", "cpu_throttled": "T", "memory_near_limit": "M", "no_requests": "R",
                "no_limits": "L", "hpa_at_max": "H"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor report`, the report function's query parameters."""
    parser.add_argument("--format", "-f", choices=("table", "json", "csv", "patch"), default="table",
                        help="table (default, 80 columns), json, csv, or patch (YAML strategic-merge patches, one "
                             "per workload, of the recommendations that change something)")
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
    elif args.format == "patch":
        sys.stdout.write(report_patches(report))
    else:
        print(render_table(report))
    return 0


def _print_fleet(settings: Settings, query: ReportQuery, now: float, fmt: str) -> int:
    from shared.domain.report.extras import format_money
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
    if not fleet.clusters:
        print("\n".join([*lines, "(no cluster has stored a run yet)"]))
        return 0
    lines += ["", f"{'CLUSTER':<22}{'IDLE/MONTH':>17}{'SAVINGS/MONTH':>17}  TOTALS AS OF"]
    for row in fleet.clusters:
        idle, savings = (format_money(amount, fleet.currency) for amount in (
            row.totals.costs.idle_per_month, row.totals.costs.savings_per_month))
        lines.append(f"{fit_name((row.cluster,), 21):<22}{idle:>17}{savings:>17}"
                     f"  {utc_minute(row.totals_computed_at) if row.totals_computed_at else '-'}")
    print("\n".join(lines))
    return 0


def render_table(report: Report) -> str:
    """The report for an 80-column terminal: totals and money, then one line per container, then what
    needs words (policy errors, HPAs that could not be listed, resource changes and what followed)."""
    q, w, t = report.query, report.query.window, report.cluster
    data = f"{format_duration(report.covered_seconds)} of data" if report.covered_seconds else "no data"
    lines = [
        f"Cluster {report.cluster_name}",
        f"Report over {w.label}: {utc_minute(w.start).removesuffix(' UTC')} to {utc_minute(w.end)} ({data})",
        f"Cluster, on average: CPU requested {format_cores(t.cpu_requested_millicores)}, used "
        f"{format_cores(t.cpu_used_millicores)}, idle {format_cores(t.cpu_idle_millicores)}",
        f"  memory requested {format_bytes(t.memory_requested_bytes)}, used {format_bytes(t.memory_used_bytes)},"
        f" idle {format_bytes(t.memory_idle_bytes)}",
        *_money(report),
        f"{len(report.containers)} of {report.containers_total} containers, {SORTS[q.sort][1]}"
        + (f", namespace {q.namespace}" if q.namespace else "") + (f", workload {q.workload}" if q.workload else ""),
        "",
        f"{'':<{NAME_WIDTH}}{' CPU '.center(18, '-')}{' memory '.center(21, '-')}",
        f"{'NS/WORKLOAD/CONTAINER':<{NAME_WIDTH}}{'req':>6}{'p95':>6}{'rec':>6}"
        f"{'req':>7}{'peak':>7}{'rec':>7}{'conf':>6}{'save/mo':>7} FLAGS",
    ]
    empty = "(no samples match these filters in this window)" if report.covered_seconds else textwrap.fill(NO_DATA, 80)
    lines += [_row(c) for c in report.containers] or [empty]
    lines += ["", *(f"Warning: {warning}" for warning in report.runs.warnings)] if report.runs.warnings else []
    lines += _notes(report)
    lines += [
        "",
        "rec: recommended request (= keep it, ? not enough data); conf: confidence,",
        "* below REPORT_MIN_CONFIDENCE; save/mo: savings per month if applied.",
        "p95, peak: per pod. Flags: O OOMKilled, T CPU throttled, M memory near",
        "limit, R no requests, L no limits, H HPA at max, G gone, I ignored,",
        "P policy error. `--format json` gives every number with its reason,",
        "`--format patch` the changes as kubectl patches.",
    ]
    return "\n".join(lines)


def _money(report: Report) -> list[str]:
    """The cluster's money per month, and per group when REPORT_GROUP_BY_LABEL is set."""
    money, currency = report.cluster.costs, report.prices.currency
    lines = [f"Per month ({currency}): requested {money.requested_per_month:,.2f}, idle {money.idle_per_month:,.2f},"
             f" savings {money.savings_per_month:,.2f},", f"  cost to fix risk {money.cost_to_fix_risk_per_month:,.2f}"]
    if report.groups:
        savings = ", ".join(f"{name} {totals.costs.savings_per_month:,.2f}" for name, totals in report.groups.items())
        lines += textwrap.wrap(f"Savings by {report.group_label}: {savings}", 80, subsequent_indent="  ")
    return lines


def _row(c: ExplainedContainer) -> str:
    r = c.recommendation
    flags = "".join(FLAG_LETTERS[f.flag] for f in c.flags) + ("G" if c.gone else "") + (
        "I" if c.policy.ignored else "") + ("P" if c.policy.errors else "")
    confidence = f"{r.confidence:.2f}" + ("*" if r.low_confidence else " ")
    return (f"{fit_name((c.namespace, c.workload_name, c.container), NAME_WIDTH - 1):<{NAME_WIDTH}}"
            f"{_cpu(c.cpu_request_millicores):>6}{_cpu(c.cpu_usage_p95_millicores):>6}"
            f"{_recommended(r.cpu_request, _cpu):>6}{format_bytes(c.memory_request_bytes):>7}"
            f"{format_bytes(c.memory_working_set_max_bytes):>7}{_recommended(r.memory_request, format_bytes):>7}"
            f"{confidence:>6}{_amount(c.costs.savings_per_month):>7} {flags}").rstrip()


def _recommended(advice: Advice, fmt: Callable[[float | None], str]) -> str:
    if advice.recommended is None:
        return "?"
    return "=" if advice.action == KEEP else fmt(advice.recommended)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _amount(value: float) -> str:
    return "-" if value < 0.005 else f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _notes(report: Report) -> list[str]:
    """Resource changes and what followed, policy errors, and HPAs that could not be listed."""
    notes: dict[str, None] = {}
    for c in report.containers:
        for change in c.change_impacts:
            before, after = change.before, change.after
            notes[f"Changed {c.namespace}/{c.workload_name}/{c.container} {utc_minute(change.ts)}: {change.label}; "
                  f"{format_duration(after.end - after.start)} before -> after: p95 "
                  f"{_cpu(before.cpu_p95_millicores)} -> {_cpu(after.cpu_p95_millicores)}, peak "
                  f"{format_bytes(before.memory_peak_bytes)} -> {format_bytes(after.memory_peak_bytes)}, throttled "
                  f"{_ratio(before.cpu_throttled_ratio_avg)} -> {_ratio(after.cpu_throttled_ratio_avg)}, OOM kills "
                  f"{before.oom_kills} -> {after.oom_kills}, restarts {before.restarts} -> {after.restarts}"] = None
    for c in report.containers:
        for error in c.policy.errors:
            notes[f"Policy of {c.namespace}/{c.workload_name}: {error}"] = None
    if report.hpa_error:
        notes[f"HPAs could not be listed ({report.hpa_error}); recommendations do not allow for them"] = None
    return ["", *(line for note in notes for line in textwrap.wrap(note, 80, subsequent_indent="  "))] if notes else []


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
