"""The report as one HTML page: totals, a filter form, and per workload its containers' numbers and
charts of CPU and memory use against request and limit.

Everything is rendered here, on the server, as HTML with inline CSS and SVG: no script, no build
step, nothing fetched from elsewhere, so the page works offline, behind strict proxies and in a
mail client. Every number's reason is its tooltip (the `title` attribute).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from html import escape
from urllib.parse import urlencode

from shared.core.timeutil import utc_minute
from shared.domain.report import FLAG_LABELS, NO_DATA, SORTS, ContainerReport, Report, Totals
from shared.domain.rightsizing import format_bytes, format_cores, format_millicores, format_span, percentile_label
from shared.store.usage_series import Point

WINDOW_CHOICES = ("6h", "24h", "7d", "14d", "30d", "90d")
CHART_WIDTH, CHART_HEIGHT = 540, 170
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 58, 10, 10, 24
# (figure of a Point, label, CSS class): usage lines solid, request and limit dashed
_CPU_LINES = (("cpu_avg_millicores", "average", "avg"), ("cpu_max_millicores", "peak", "max"),
              ("cpu_request_millicores", "request", "request"), ("cpu_limit_millicores", "limit", "limit"))
_MEMORY_LINES = (("memory_avg_bytes", "average", "avg"), ("memory_max_bytes", "peak", "max"),
                 ("memory_request_bytes", "request", "request"), ("memory_limit_bytes", "limit", "limit"))

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2a44;color:#fff;padding:14px 24px}header h1{font-size:20px;margin:0 0 4px}
header p{margin:0;color:#c9d2e3}main{padding:16px 24px;max-width:1240px}
form.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:end;background:#fff;padding:12px 16px;
border:1px solid #dde1e7;border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}
form.filters input,form.filters select{font:inherit;padding:4px 6px;min-width:120px}
form.filters button{font:inherit;padding:5px 14px;background:#2b5cd6;color:#fff;border:0;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #e6e8ec;
text-align:right;white-space:nowrap}th{background:#eef0f4;font-weight:600}td.name,th.name{text-align:left}
section.workload{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:16px 0;padding:10px 16px}
section.workload h2{font-size:16px;margin:4px 0}section.workload p.totals{margin:0 0 8px;color:#555}
.container h3{font-size:14px;margin:12px 0 4px}.charts{display:flex;flex-wrap:wrap;gap:12px}
.flag{display:inline-block;background:#fde7e7;color:#a01919;border-radius:10px;padding:0 8px;margin-right:4px;
font-size:12px}.flag.none{background:#e6f4ea;color:#1e6b34}.rec{font-weight:600;color:#1e6b34}
.nodata{color:#8a6d00}[title]{cursor:help}
svg.chart{background:#fcfcfd;border:1px solid #e6e8ec}svg.chart text{font-size:10px;fill:#555}
svg.chart .grid{stroke:#e6e8ec}svg.chart polyline{fill:none;stroke-width:1.5}
svg.chart .avg{stroke:#2b5cd6}svg.chart .max{stroke:#8fb0f0;stroke-width:1}
svg.chart .request{stroke:#e08a00;stroke-dasharray:5 3}svg.chart .limit{stroke:#c62828;stroke-dasharray:2 3}
.legend{font-size:12px;color:#555}.legend i{display:inline-block;width:14px;height:3px;margin:0 4px 3px 10px}
a{color:#2b5cd6}footer{color:#666;font-size:12px;padding:16px 24px}
"""


def render_page(
    report: Report, series: dict[int, list[Point]], namespaces: Iterable[str], params: dict[str, str],
    step_seconds: int, max_window_days: float,
) -> str:
    """The whole page. `params` are the query parameters as given (kept in the form and the links)."""
    w = report.query.window
    title = f"Requests vs usage over {escape(w.label)}"
    data = f"{format_span(report.span_seconds)} with data" if report.span_seconds else "no data"
    body = [
        f"<header><h1>k8s-resource-monitor: {title}</h1><p>{_utc(w.start)} to {_utc(w.end)} "
        f"({data}) &middot; generated {_utc(report.generated_at)}</p></header>",
        "<main>",
        _filters(report, namespaces, params, max_window_days),
        _cards(report.cluster, report),
        _namespaces(report.namespaces),
        _workloads(report, series, step_seconds),
        "</main>",
        f"<footer>{_notes(report)} Downloads: {_download_links(params)}.</footer>",
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">"
            f"<title>{title} - k8s-resource-monitor</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def _filters(report: Report, namespaces: Iterable[str], params: dict[str, str], max_days: float) -> str:
    q = report.query
    namespace_options = "".join(
        f"<option value=\"{escape(n)}\"{' selected' if n == q.namespace else ''}>{escape(n)}</option>"
        for n in namespaces)
    windows = [label for label in WINDOW_CHOICES if _days(label) <= max_days]
    if q.window.label not in windows:
        windows.append(q.window.label)
    window_options = "".join(f"<option{' selected' if label == q.window.label else ''}>{escape(label)}</option>"
                             for label in windows)
    sort_options = "".join(
        f"<option value=\"{name}\"{' selected' if name == q.sort else ''}>{escape(text)}</option>"
        for name, (_, text) in SORTS.items())
    fmt = params.get("format")
    hidden = f"<input type=\"hidden\" name=\"format\" value=\"{escape(fmt)}\">" if fmt else ""
    limit = "" if q.limit is None else str(q.limit)
    return (
        "<form class=\"filters\" method=\"get\">"
        f"<label>Namespace<select name=\"namespace\"><option value=\"\">all namespaces</option>{namespace_options}"
        "</select></label>"
        f"<label>Workload<input name=\"workload\" placeholder=\"name or Kind/name\" value=\"{escape(q.workload or '')}\">"
        "</label>"
        f"<label>Window<select name=\"window\">{window_options}</select></label>"
        f"<label>Sort<select name=\"sort\">{sort_options}</select></label>"
        f"<label>Containers shown<input name=\"limit\" type=\"number\" min=\"1\" value=\"{limit}\"></label>"
        f"{hidden}<button type=\"submit\">Apply</button></form>"
    )


def _cards(t: Totals, report: Report) -> str:
    cards = [
        (format_cores(t.cpu_requested_millicores), "CPU requested (average)"),
        (format_cores(t.cpu_used_millicores), "CPU used (average)"),
        (format_cores(t.cpu_idle_millicores), "CPU requested but idle"),
        (format_bytes(t.memory_requested_bytes), "memory requested (average)"),
        (format_bytes(t.memory_used_bytes), "memory used (average)"),
        (format_bytes(t.memory_idle_bytes), "memory requested but idle"),
        (f"{report.containers_total}", "workload containers"),
    ]
    cards += [(str(count), f"flagged {FLAG_LABELS[flag]}") for flag, count in sorted(t.flags.items())]
    return "<div class=\"cards\" id=\"totals\">" + "".join(
        f"<div class=\"card\"><b>{escape(value)}</b><span>{escape(label)}</span></div>" for value, label in cards
    ) + "</div>"


def _namespaces(namespaces: dict[str, Totals]) -> str:
    rows = "".join(
        f"<tr><td class=\"name\">{escape(name)}</td><td>{t.containers}</td>"
        f"<td>{format_cores(t.cpu_requested_millicores)}</td><td>{format_cores(t.cpu_used_millicores)}</td>"
        f"<td>{format_cores(t.cpu_idle_millicores)}</td><td>{format_bytes(t.memory_requested_bytes)}</td>"
        f"<td>{format_bytes(t.memory_used_bytes)}</td><td>{format_bytes(t.memory_idle_bytes)}</td></tr>"
        for name, t in namespaces.items())
    return ("<h2>Namespaces</h2><table id=\"namespaces\"><thead><tr><th class=\"name\">namespace</th><th>containers</th>"
            "<th>CPU requested</th><th>CPU used</th><th>CPU idle</th><th>memory requested</th><th>memory used</th>"
            f"<th>memory idle</th></tr></thead><tbody>{rows}</tbody></table>")


def _workloads(report: Report, series: dict[int, list[Point]], step: int) -> str:
    if not report.containers:
        why = "No samples match these filters in this window." if report.span_seconds else escape(NO_DATA[0].upper() + NO_DATA[1:]) + "."
        return f"<p class=\"nodata\" id=\"workloads\">{why}</p>"
    shown = len(report.containers)
    parts = [f"<h2 id=\"workloads\">Workloads ({shown} of {report.containers_total} containers, "
             f"{escape(SORTS[report.query.sort][1])}; charts per pod, one point per {format_span(step)})</h2>"]
    groups: dict[str, list[ContainerReport]] = {}
    for c in report.containers:
        groups.setdefault(c.workload, []).append(c)
    for name, containers in groups.items():
        t = report.workloads[name]
        parts.append(
            f"<section class=\"workload\" data-namespace=\"{escape(containers[0].namespace)}\">"
            f"<h2>{escape(name)}</h2><p class=\"totals\">CPU requested {format_cores(t.cpu_requested_millicores)}, "
            f"used {format_cores(t.cpu_used_millicores)}, idle {format_cores(t.cpu_idle_millicores)}"
            f" &middot; memory requested {format_bytes(t.memory_requested_bytes)}, used "
            f"{format_bytes(t.memory_used_bytes)}, idle {format_bytes(t.memory_idle_bytes)} (every pod, on average)</p>")
        for c in containers:
            parts.append(_container(c, series.get(c.container_id, []), report))
        parts.append("</section>")
    return "\n".join(parts)


def _container(c: ContainerReport, points: list[Point], report: Report) -> str:
    r, why = c.recommendation, c.reasons
    label = percentile_label(report.policy.cpu_percentile)

    def cell(text: str, reason: str | None = None, css: str = "") -> str:
        tip = f" title=\"{escape(reason)}\"" if reason else ""
        return f"<td class=\"{css}\"{tip}>{escape(text)}</td>"

    def recommended(value: str, reason: str, known: bool) -> str:
        return cell(value if known else "not enough data", reason, "rec" if known else "nodata")

    limits = why.get("requests_and_limits")
    rows = (
        "<table class=\"numbers\"><thead><tr><th class=\"name\"></th><th>request</th><th>limit</th><th>average</th>"
        "<th>p95</th><th>peak</th><th>idle (all pods)</th><th>recommended request</th></tr></thead><tbody>"
        "<tr><td class=\"name\">CPU</td>"
        + cell(format_millicores(c.cpu_request_millicores), limits) + cell(format_millicores(c.cpu_limit_millicores), limits)
        + cell(format_millicores(c.cpu_usage_avg_millicores), why.get("cpu_usage_avg_millicores"))
        + cell(format_millicores(c.cpu_usage_p95_millicores), why.get("cpu_usage_p95_millicores"))
        + cell(format_millicores(c.cpu_usage_max_millicores), why.get("cpu_usage_max_millicores"))
        + cell(format_millicores(c.cpu_idle_millicores), why.get("cpu_idle_millicores"))
        + recommended(format_millicores(r.cpu_request_millicores), r.cpu_reason, r.cpu_request_millicores is not None)
        + "</tr><tr><td class=\"name\">memory</td>"
        + cell(format_bytes(c.memory_request_bytes), limits) + cell(format_bytes(c.memory_limit_bytes), limits)
        + cell(format_bytes(c.memory_working_set_avg_bytes), why.get("memory_working_set_avg_bytes"))
        + cell("")
        + cell(format_bytes(c.memory_working_set_max_bytes), why.get("memory_working_set_max_bytes"))
        + cell(format_bytes(c.memory_idle_bytes), why.get("memory_idle_bytes"))
        + recommended(f"{format_bytes(r.memory_request_bytes)} (limit too)", r.memory_reason,
                      r.memory_request_bytes is not None)
        + "</tr></tbody></table>"
    )
    flags = "".join(f"<span class=\"flag\" title=\"{escape(f.reason)}\">{escape(FLAG_LABELS[f.flag])}</span>"
                    for f in c.flags) or "<span class=\"flag none\">no risk flags</span>"
    pods = f"{c.pods_avg:.1f} pods on average" if c.pods_avg else "no usage samples"
    window = report.query.window
    charts = (
        "<div class=\"charts\">"
        + svg_chart(f"CPU of {c.container}", points, _CPU_LINES, window.start, window.end, format_millicores, (1,))
        + svg_chart(f"memory of {c.container}", points, _MEMORY_LINES, window.start, window.end, format_bytes,
                    (1024**2, 1024**3))
        + "</div>"
    )
    return (f"<div class=\"container\" data-container=\"{escape(c.container)}\"><h3>{escape(c.container)} "
            f"<span title=\"{escape(why.get('pods_avg', ''))}\">({pods}, {c.cpu_samples} samples)</span> "
            f"{flags}</h3>{rows}{charts}<p class=\"legend\">{_legend()}; {label} and peak are per pod</p></div>")


def svg_chart(title: str, points: list[Point], lines: tuple, start: int, end: int,
              formatter: Callable[[float], str], units: tuple[float, ...]) -> str:
    """An SVG line chart of `lines` (figure, label, CSS class) over [start, end); gaps where data is
    missing. The y axis has four round steps of one of `units` (millicores; MiB or GiB)."""
    values = [getattr(p, figure) for p in points for figure, _, _ in lines]
    step = _tick_step(max((v for v in values if v is not None), default=0), units)
    top = step * 4
    plot_w = CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    span = max(1, end - start)

    def x(ts: float) -> float:
        return _MARGIN_LEFT + plot_w * (ts - start) / span

    def y(value: float) -> float:
        return _MARGIN_TOP + plot_h * (1 - value / top)

    grid = []
    for k in range(5):
        value = step * k
        grid.append(f"<line class=\"grid\" x1=\"{_MARGIN_LEFT}\" x2=\"{CHART_WIDTH - _MARGIN_RIGHT}\" "
                    f"y1=\"{y(value):.1f}\" y2=\"{y(value):.1f}\"/><text x=\"{_MARGIN_LEFT - 4}\" y=\"{y(value) + 3:.1f}\" "
                    f"text-anchor=\"end\">{escape(formatter(value))}</text>")
    for k in range(3):
        ts = start + span * k / 2
        anchor = ("start", "middle", "end")[k]
        grid.append(f"<text x=\"{x(ts):.1f}\" y=\"{CHART_HEIGHT - 6}\" text-anchor=\"{anchor}\">{_utc(ts)}</text>")
    polylines, drawn = [], 0
    gap = _typical_step(points) * 2.5
    for figure, label, css in lines:
        for segment in _segments(points, figure, gap):
            drawn += len(segment)
            coordinates = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in segment)
            polylines.append(f"<polyline class=\"{css}\" data-figure=\"{figure}\" points=\"{coordinates}\">"
                             f"<title>{escape(label)}</title></polyline>")
    empty = "" if drawn else (f"<text x=\"{CHART_WIDTH / 2}\" y=\"{CHART_HEIGHT / 2}\" text-anchor=\"middle\">"
                              "no samples in this window</text>")
    return (f"<svg class=\"chart\" role=\"img\" aria-label=\"{escape(title)}\" data-points=\"{drawn}\" "
            f"width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\">"
            f"<title>{escape(title)}</title>{''.join(grid)}{''.join(polylines)}{empty}</svg>")


def _tick_step(highest: float, units: tuple[float, ...]) -> float:
    """The smallest of 1, 2, 5 x 10^k units that fits `highest` (plus a margin) in four steps, in the
    largest of `units` that `highest` holds twice (so memory axes read 500Mi or 2Gi, never 1.95Gi)."""
    unit = next((u for u in reversed(units) if highest >= 2 * u), units[0])
    wanted = max(highest * 1.05 / 4 / unit, 1)
    magnitude = 10 ** math.floor(math.log10(wanted))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= wanted) * unit


def _segments(points: list[Point], figure: str, gap: float) -> list[list[tuple[int, float]]]:
    """Runs of known values of one figure, split where values are missing or far apart in time."""
    segments: list[list[tuple[int, float]]] = []
    previous = None
    for p in points:
        value = getattr(p, figure)
        if value is None:
            previous = None
            continue
        if previous is None or p.ts - previous > gap:
            segments.append([])
        segments[-1].append((p.ts, value))
        previous = p.ts
    return segments


def _typical_step(points: list[Point]) -> float:
    steps = sorted(b.ts - a.ts for a, b in zip(points, points[1:]))
    return steps[len(steps) // 2] if steps else 1


def _legend() -> str:
    colors = (("#2b5cd6", "average"), ("#8fb0f0", "peak"), ("#e08a00", "request"), ("#c62828", "limit"))
    return "".join(f"<i style=\"background:{color}\"></i>{label}" for color, label in colors)


def _notes(report: Report) -> str:
    p = report.policy
    return escape(
        f"Recommendations: CPU request = {percentile_label(p.cpu_percentile)} of usage, memory request and limit "
        f"= peak working set + {p.memory_headroom:.0%}, floors {format_millicores(p.cpu_floor_millicores)} and "
        f"{format_bytes(p.memory_floor_bytes)}, at least {p.min_samples} samples. Idle = request - average use, "
        f"times the pods running on average. Hover a number for where it comes from.")


def _download_links(params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if k != "format" and v}
    return " ".join(f"<a href=\"?{escape(urlencode({**kept, 'format': fmt}))}\">{fmt.upper()}</a>"
                    for fmt in ("json", "csv"))


def _days(label: str) -> float:
    number, unit = float(label[:-1]), label[-1]
    return number * {"h": 1 / 24, "d": 1.0}[unit]


def _utc(seconds: float) -> str:
    return f"{utc_minute(seconds)} UTC"
