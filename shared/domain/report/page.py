"""The report as one HTML page: totals, a filter form, and per workload its containers' numbers and
charts of CPU and memory use against request and limit.

Everything is rendered on the server from templates/page.html (and chart.svg), autoescaped, with
inline CSS and SVG: no script, no build step, nothing fetched from elsewhere, so the page works
offline, behind strict proxies and in a mail client. Every number's reason is its tooltip (the
`title` attribute).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from shared.core.formats import format_bytes, format_cores, format_duration, format_millicores
from shared.core.templates import render
from shared.domain.report.build import NO_DATA, Report
from shared.domain.report.charts import CPU_LINES, CPU_UNITS, MEMORY_LINES, MEMORY_UNITS, Chart, line_chart
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.figures import Totals
from shared.domain.report.flags import FLAG_LABELS
from shared.domain.report.query import SORTS
from shared.domain.rightsizing import percentile_label
from shared.store.usage_series import Point

WINDOW_CHOICES = ("6h", "24h", "7d", "14d", "30d", "90d")
DOWNLOADS = ("json", "csv")


TEMPLATES = "shared.domain.report"  # the package whose templates/ hold the page

def render_page(
    report: Report, series: dict[int, list[Point]], namespaces: Iterable[str], params: dict[str, str],
    step_seconds: int, max_window_days: float,
) -> str:
    """The whole page. `params` are the query parameters as given (kept in the form and the links)."""
    q = report.query
    window = q.window

    def charts(c: ExplainedContainer) -> tuple[Chart, Chart]:
        points = series.get(c.container_id, [])
        return (line_chart(f"CPU of {c.container}", points, CPU_LINES, window.start, window.end, format_millicores,
                           CPU_UNITS),
                line_chart(f"memory of {c.container}", points, MEMORY_LINES, window.start, window.end, format_bytes,
                           MEMORY_UNITS))

    return render(
        TEMPLATES, "page.html", report=report, query=q, window=window, namespaces=list(namespaces),
        windows=_window_choices(window.label, max_window_days),
        sorts=[(name, text) for name, (_, text) in SORTS.items()], order=SORTS[q.sort][1],
        format=params.get("format"), cards=_cards(report.cluster, report.containers_total), groups=_groups(report),
        charts=charts, flag_labels=FLAG_LABELS, percentile=percentile_label(report.policy.cpu_percentile),
        step=format_duration(step_seconds), no_data=NO_DATA[0].upper() + NO_DATA[1:] + ".", notes=_notes(report),
        downloads=_downloads(params),
    )


def _window_choices(current: str, max_days: float) -> list[str]:
    """The usual windows the history holds, and the one asked for."""
    windows = [label for label in WINDOW_CHOICES if _days(label) <= max_days]
    return windows if current in windows else [*windows, current]


def _cards(t: Totals, containers_total: int) -> list[tuple[str, str]]:
    """(value, label) of the cluster's cards, one per risk flag seen."""
    cards = [
        (format_cores(t.cpu_requested_millicores), "CPU requested (average)"),
        (format_cores(t.cpu_used_millicores), "CPU used (average)"),
        (format_cores(t.cpu_idle_millicores), "CPU requested but idle"),
        (format_bytes(t.memory_requested_bytes), "memory requested (average)"),
        (format_bytes(t.memory_used_bytes), "memory used (average)"),
        (format_bytes(t.memory_idle_bytes), "memory requested but idle"),
        (f"{containers_total}", "workload containers"),
    ]
    return cards + [(str(count), f"flagged {FLAG_LABELS[flag]}") for flag, count in sorted(t.flags.items())]


def _groups(report: Report) -> list[tuple[str, Totals, list[ExplainedContainer]]]:
    """The listed containers by workload, in the report's order: (workload, its totals, containers)."""
    groups: dict[str, list[ExplainedContainer]] = {}
    for c in report.containers:
        groups.setdefault(c.workload, []).append(c)
    return [(name, report.workloads[name], containers) for name, containers in groups.items()]


def _notes(report: Report) -> str:
    p = report.policy
    return (f"Recommendations: CPU request = {percentile_label(p.cpu_percentile)} of usage, memory request and limit "
            f"= peak working set + {p.memory_headroom:.0%}, floors {format_millicores(p.cpu_floor_millicores)} and "
            f"{format_bytes(p.memory_floor_bytes)}, at least {p.min_samples} samples. Idle = request - average use, "
            f"times the pods running on average. Hover a number for where it comes from.")


def _downloads(params: dict[str, str]) -> list[tuple[str, str]]:
    """(format, query string) of the download links: the page's own parameters with that format."""
    kept = {k: v for k, v in params.items() if k != "format" and v}
    return [(fmt, urlencode({**kept, "format": fmt})) for fmt in DOWNLOADS]


def _days(label: str) -> float:
    number, unit = float(label[:-1]), label[-1]
    return number * {"h": 1 / 24, "d": 1.0}[unit]
