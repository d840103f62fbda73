"""The report as HTML pages: the cluster, a namespace, or a workload with its containers' charts.

The filters choose the view: none is the cluster (cards of its totals and risks, and a table of its
namespaces, workloads or containers), `namespace` is that namespace (its workloads or containers),
`workload` is the workload's detail: every container's figures, recommendation with its reasons,
and large charts over the window. Tables sort by any column and page on the server
(shared/domain/report/tables.py), so every view is a link that works without script and can be
shared. Everything is rendered here from templates/ by autoescaping Jinja2, with the page's own
stylesheet and script inlined (shared/domain/report/assets.py): one request, nothing from
elsewhere, under any path the function is served at. The script only adds reading the charts'
values on hover or focus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.formats import format_bytes, format_cores, format_millicores
from shared.core.templates import render
from shared.domain.errors import InvalidInput
from shared.domain.report.assets import page_script, page_stylesheet
from shared.domain.report.build import NO_DATA, Report
from shared.domain.report.charts import CPU, MEMORY, Chart, usage_chart
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.extras import Extras, container_extras, format_money, money, workload_patch
from shared.domain.report.figures import Totals
from shared.domain.report.flags import FLAG_LABELS
from shared.domain.report.links import PageLinks
from shared.domain.report.tables import (
    SORT_COLUMNS,
    Column,
    GroupRow,
    TablePage,
    container_columns,
    group_columns,
    header_rows,
    page_numbers,
    page_of,
    recommended_cell,
    sorted_rows,
)
from shared.domain.rightsizing import percentile_label
from shared.store.usage_series import Point

TEMPLATES = "shared.domain.report"  # the package whose templates/ hold the page
WINDOW_CHOICES = ("6h", "24h", "7d", "14d", "30d", "90d")
GROUPS = {"cluster": ("namespace", "workload", "container"), "namespace": ("workload", "container")}
GROUP_TITLES = {"namespace": "Namespaces", "workload": "Workloads", "container": "Containers"}
# Rows per page when `limit` does not say: a table's rows, or a workload's containers with their charts.
PAGE_SIZES = {"cluster": 50, "namespace": 50, "workload": 10}
MAX_PAGE = 1_000_000

SeriesLoader = Callable[[list[int]], dict[int, list[Point]]]


def page_view(params: Mapping[str, str]) -> str:
    """Which view the filters ask for: `workload`, `namespace` or `cluster`."""
    if params.get("workload"):
        return "workload"
    return "namespace" if params.get("namespace") else "cluster"


@dataclass(frozen=True)
class PageRequest:
    """What the page asks beyond the report's query: the view, the table's rows, order and page, and
    an optional risk flag the rows must carry."""

    view: str
    group: str
    order: str
    descending: bool
    page: int
    flag: str | None


def parse_page_request(params: Mapping[str, str], sort: str) -> PageRequest:
    """The page's parameters, or InvalidInput naming the bad one. Without `order` the table is sorted
    by the column of the report's `sort`."""
    view = page_view(params)
    groups = GROUPS.get(view, ("container",))
    group = params.get("group") or groups[0]
    if group not in groups:
        raise InvalidInput(f"group: {group[:20]!r} is not one of {', '.join(groups)} in this view")
    columns = _columns(group, lambda _: "")
    order = params.get("order") or SORT_COLUMNS[sort][0 if group == "container" else 1]
    if order not in columns:
        raise InvalidInput(f"order: {order[:30]!r} is not a column of this table; use {', '.join(columns)}")
    direction = params.get("dir") or columns[order].first_direction
    if direction not in ("asc", "desc"):
        raise InvalidInput(f"dir: {direction[:10]!r} is not asc or desc")
    page = params.get("page") or "1"
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise InvalidInput(f"page: {page[:20]!r} is not a page number from 1")
    flag = params.get("flag") or None
    if flag is not None and flag not in FLAG_LABELS:
        raise InvalidInput(f"flag: {flag[:30]!r} is not one of {', '.join(FLAG_LABELS)}")
    return PageRequest(view, group, order, direction == "desc", int(page), flag)


def containers_to_list(request: PageRequest) -> int | None:
    """How many containers the page's report must list (explain, with recommendations): none for the
    namespaces table, which needs only totals; every one otherwise, since the page sorts them itself."""
    return 0 if request.group == "namespace" else None


@dataclass(frozen=True)
class Card:
    """A figure at the top of a view: its value, what it is, a note, and where it leads."""

    value: str
    label: str
    note: str = ""
    href: str | None = None
    css: str = ""


@dataclass(frozen=True)
class ContainerDetail:
    """One container of the workload view: its figures, charts and what else the report carries."""

    c: ExplainedContainer
    charts: tuple[Chart, Chart]
    extras: Extras


def render_page(report: Report, request: PageRequest, params: dict[str, str], namespaces: Iterable[str],
                page_size: int | None, max_window_days: float, load_series: SeriesLoader,
                interval_seconds: int) -> str:
    """The page of `request.view`. `params` are the query parameters as given (kept in the form and
    the links); `report` lists every selected container; `load_series` reads the charts' points of the
    containers shown."""
    q = report.query
    link = PageLinks(params)
    context: dict[str, Any] = {}
    if request.view == "workload":
        shown = page_of([], sorted(report.containers, key=lambda c: c.name_key), request.page, page_size)
        series = load_series([c.container_id for c in shown.rows])
        context["details"] = [_detail(c, series.get(c.container_id, []), interval_seconds) for c in shown.rows]
        context["table"] = shown
        shown_workloads = dict.fromkeys(c.workload for c in shown.rows)
        context["patches"] = [(key, text) for key in shown_workloads if (text := workload_patch(report, key))]
    else:
        context["table"], context["table_title"] = _table(report, request, link, page_size)
        context["sort_links"] = {col.key: link.sorted_by(col, request.order, request.descending)
                                 for col in context["table"].columns}
        context["headings"] = header_rows(context["table"].columns)
    return render(
        TEMPLATES, "page.html", report=report, query=q, window=q.window, request=request, link=link,
        heading=_heading(report, request.view), crumbs=_crumbs(report, request.view, link),
        namespaces=list(namespaces), windows=_window_choices(q.window.label, max_window_days),
        groups=[(g, GROUP_TITLES[g]) for g in GROUPS.get(request.view, ())], flag_labels=FLAG_LABELS,
        cards=_cards(report.cluster, report.containers_total) + _money_cards(report),
        risks=_risk_cards(report.cluster, link), pages=page_numbers,
        no_data=NO_DATA[0].upper() + NO_DATA[1:] + ".", notes=_notes(report), downloads=link.downloads(),
        recommended=recommended_cell, as_millicores=format_millicores, as_bytes=format_bytes,
        stylesheet=page_stylesheet(), script=page_script(), page_size=page_size, **context,
    )


def _columns(group: str, workload_link: Callable[[ExplainedContainer], str], currency: str = "") -> dict[str, Column]:
    """The table's columns by key (savings in `currency`)."""
    columns = container_columns(workload_link, currency) if group == "container" else group_columns(group == "workload")
    return {col.key: col for col in columns}


def _table(report: Report, request: PageRequest, link: PageLinks, page_size: int | None) -> tuple[TablePage, str]:
    """The view's table page and its title."""
    columns = _columns(request.group, link.workload_of, report.prices.currency)
    column = columns[request.order]
    flag = request.flag
    rows: list[Any]
    if request.group == "container":
        rows = [c for c in report.containers if flag is None or any(f.flag == flag for f in c.flags)]
        name: Callable[[Any], Any] = lambda c: c.name_key  # noqa: E731
    elif request.group == "workload":
        rows = [GroupRow(key.split("/", 1)[0], key.split("/", 1)[1], t, link.view(*key.split("/", 1)))
                for key, t in report.workloads.items() if flag is None or t.flags.get(flag)]
        name = lambda g: (g.namespace, g.workload)  # noqa: E731
    else:
        rows = [GroupRow(ns, None, t, link.view(ns)) for ns, t in report.namespaces.items()
                if flag is None or t.flags.get(flag)]
        name = lambda g: g.namespace  # noqa: E731
    ordered = sorted_rows(rows, column, request.descending, name)
    title = GROUP_TITLES[request.group] + (f" flagged {FLAG_LABELS[flag]}" if flag else "")
    return page_of(list(columns.values()), ordered, request.page, page_size), title


def _detail(c: ExplainedContainer, points: list[Point], interval_seconds: int) -> ContainerDetail:
    extras = container_extras(c)
    r = c.recommendation
    cpu = usage_chart(CPU, f"CPU of {c.container}, per pod", points,
                      {"p95": c.cpu_usage_p95_millicores, "recommended": r.cpu_request_millicores},
                      interval_seconds, extras.markers)
    memory = usage_chart(MEMORY, f"Memory of {c.container}, per pod", points,
                         {"recommended": r.memory_request_bytes}, interval_seconds, extras.markers)
    return ContainerDetail(c, (cpu, memory), extras)


def _heading(report: Report, view: str) -> str:
    q = report.query
    if view == "workload":
        where = f"{q.workload} in {q.namespace}" if q.namespace else f"{q.workload}"
        return f"{report.cluster_name}: {where}, requests vs usage over {q.window.label}"
    if view == "namespace":
        return f"{report.cluster_name}: namespace {q.namespace}, requests vs usage over {q.window.label}"
    return f"{report.cluster_name}: Requests vs usage over {q.window.label}"


def _crumbs(report: Report, view: str, link: PageLinks) -> list[tuple[str, str | None]]:
    """The way back up: (text, link; None for the current view)."""
    q = report.query
    crumbs: list[tuple[str, str | None]] = [(report.cluster_name, link.view() if view != "cluster" else None)]
    if q.namespace:
        crumbs.append((q.namespace, link.view(q.namespace) if view == "workload" else None))
    if view == "workload":
        crumbs.append((q.workload or "", None))
    return crumbs


def _window_choices(current: str, max_days: float) -> list[str]:
    """The usual windows the history holds, and the one asked for."""
    windows = [label for label in WINDOW_CHOICES if _days(label) <= max_days]
    return windows if current in windows else [*windows, current]


def _cards(t: Totals, containers_total: int) -> list[Card]:
    """The view's totals: requested, used and idle CPU and memory, and the containers counted."""
    def idle(part: float, whole: float) -> str:
        return f"{part / whole:.0%} of requested" if whole else ""

    return [
        Card(format_cores(t.cpu_requested_millicores), "CPU requested"),
        Card(format_cores(t.cpu_used_millicores), "CPU used"),
        Card(format_cores(t.cpu_idle_millicores), "CPU idle", idle(t.cpu_idle_millicores, t.cpu_requested_millicores),
             css="idle"),
        Card(format_bytes(t.memory_requested_bytes), "memory requested"),
        Card(format_bytes(t.memory_used_bytes), "memory used"),
        Card(format_bytes(t.memory_idle_bytes), "memory idle", idle(t.memory_idle_bytes, t.memory_requested_bytes),
             css="idle"),
        Card(f"{containers_total}", "workload containers"),
    ]


def _money_cards(report: Report) -> list[Card]:
    """Idle cost, savings and the cost of fixing risks per month."""
    found = money(report, report.cluster)
    return [Card(format_money(found.idle_per_month, found.currency), "idle cost a month", css="idle"),
            Card(format_money(found.savings_per_month, found.currency), "savings a month",
                 "if the recommendations were applied", css="saving"),
            Card(format_money(found.cost_to_fix_per_month, found.currency), "cost of fixing risks a month",
                 "requests raised", css="fix")]


def _risk_cards(t: Totals, link: PageLinks) -> list[Card]:
    """One card per risk flag seen, leading to the containers carrying it."""
    return [Card(str(count), FLAG_LABELS[flag], "containers",
                 link.changed(group="container", flag=flag, order="flags", dir="desc"), "risk")
            for flag, count in sorted(t.flags.items())]


def _notes(report: Report) -> str:
    p = report.policy
    return (f"Recommendations: CPU request = {percentile_label(p.cpu_percentile)} of usage, memory request and limit "
            f"= peak working set + {p.memory_headroom:.0%}, floors {format_millicores(p.cpu_floor_millicores)} and "
            f"{format_bytes(p.memory_floor_bytes)}, at least {p.min_samples} samples. Idle = request - average use, "
            f"times the pods running on average. Hover a number for where it comes from.")


def _days(label: str) -> float:
    number, unit = float(label[:-1]), label[-1]
    return number * {"m": 1 / 1440, "h": 1 / 24, "d": 1.0, "w": 7.0}[unit]
