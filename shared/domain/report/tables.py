"""The page's tables: namespaces, workloads or containers, sorted by any column and cut into pages.

Sorting and paging happen on the server from query parameters (`order`, `dir`, `page`), so a
header is a plain link: it works without script, and the link is the view, ready to share. Each
column says how its cells read (with the reason behind the number as tooltip) and what it sorts by;
rows without a value sort last whichever the direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.core.formats import format_bytes, format_cores, format_millicores
from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.extras import savings_per_month
from shared.domain.report.figures import Totals
from shared.domain.report.flags import FLAG_LABELS

DOWN, UP = "\u2193", "\u2191"  # arrows: a recommendation below or above the current request


@dataclass(frozen=True)
class Cell:
    """What a table cell shows: `text`, its reason as tooltip, a link, a CSS class."""

    text: str
    title: str | None = None
    href: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Column:
    """A sortable column: `key` is its `order` value; `value` what it sorts by (None last)."""

    key: str
    label: str
    value: Callable[[Any], Any]
    cell: Callable[[Any], Cell]
    numeric: bool = True  # largest first on the first click
    align: str = "num"  # the CSS class of its cells: num (right) or text (left)
    group: str = ""  # a heading over several columns (CPU, memory); `label` then says it in full

    @property
    def short(self) -> str:
        """The header's text under its group's heading: `request` under CPU."""
        return self.label.removeprefix(self.group).strip() if self.group else self.label

    @property
    def first_direction(self) -> str:
        """The direction a click on this header first asks: largest numbers, A to Z."""
        return "desc" if self.numeric else "asc"


@dataclass(frozen=True)
class GroupRow:
    """A namespace's or workload's line: its name, the link to it and its totals."""

    namespace: str
    workload: str | None  # Kind/name; None for a namespace
    totals: Totals
    href: str


def header_rows(columns: list[Column]) -> list[tuple[str, int]]:
    """The upper header row: (group heading, columns under it); ("", 1) over a column of no group."""
    row: list[tuple[str, int]] = []
    for col in columns:
        if col.group and row and row[-1][0] == col.group:
            row[-1] = (col.group, row[-1][1] + 1)
        else:
            row.append((col.group, 1))
    return row


@dataclass(frozen=True)
class TablePage:
    """One page of a sorted table: its rows, where it is, and how many there are."""

    columns: list[Column]
    rows: list[Any]
    number: int  # 1-based
    pages: int
    total: int
    first_row: int  # 1-based, 0 when empty


def sorted_rows(rows: Sequence[Any], column: Column, descending: bool, name: Callable[[Any], Any]) -> list[Any]:
    """`rows` by `column` (ties by `name`, A to Z), rows without a value last."""
    by_name = sorted(rows, key=name)
    known = [row for row in by_name if column.value(row) is not None]
    unknown = [row for row in by_name if column.value(row) is None]
    return sorted(known, key=column.value, reverse=descending) + unknown


def page_of(columns: list[Column], rows: list[Any], page: int, size: int | None) -> TablePage:
    """Page `page` of `rows` (the last when there are fewer), `size` rows each; None: all on one."""
    if size is None or not rows:
        return TablePage(columns, rows, 1, 1, len(rows), 1 if rows else 0)
    pages = math.ceil(len(rows) / size)
    number = min(page, pages)
    first = (number - 1) * size
    return TablePage(columns, rows[first:first + size], number, pages, len(rows), first + 1)


def page_numbers(current: int, pages: int) -> list[int | None]:
    """The page links to show: the first, the last and two either side of the current; None for `...`."""
    shown = sorted({1, pages, *range(max(1, current - 2), min(pages, current + 2) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


def container_columns(link: Callable[[ExplainedContainer], str], currency: str = "") -> list[Column]:
    """The columns of the containers table; `link` is the address of a container's workload view, `currency`
    the one savings are in (CURRENCY; "": unnamed)."""
    def reason(name: str) -> Callable[[ExplainedContainer], str | None]:
        return lambda c: c.reasons.get(name)

    def figure(key: str, label: str, value: Callable[[ExplainedContainer], Any], text: Callable[[Any], str],
               why: Callable[[ExplainedContainer], str | None]) -> Column:
        return Column(key, label, value, lambda c: Cell(text(value(c)), why(c)), group=label.split()[0])

    requests = reason("requests_and_limits")
    return [
        Column("namespace", "namespace", lambda c: c.namespace, lambda c: Cell(c.namespace), False, "text"),
        Column("workload", "workload", lambda c: (c.workload_kind, c.workload_name),
               lambda c: Cell(f"{c.workload_kind}/{c.workload_name}", href=link(c)), False, "text"),
        Column("container", "container", lambda c: c.container,
               lambda c: Cell(c.container, href=f"{link(c)}#container-{c.container}"), False, "text"),
        Column("pods", "pods", lambda c: c.pods_avg,
               lambda c: Cell("-" if c.pods_avg is None else f"{c.pods_avg:.1f}", c.reasons.get("pods_avg"))),
        figure("cpu_request", "CPU request", lambda c: c.cpu_request_millicores, format_millicores, requests),
        figure("cpu_limit", "CPU limit", lambda c: c.cpu_limit_millicores, format_millicores, requests),
        figure("cpu_p95", "CPU p95", lambda c: c.cpu_usage_p95_millicores, format_millicores,
               reason("cpu_usage_p95_millicores")),
        Column("cpu_recommended", "CPU recommended", lambda c: c.recommendation.cpu_request_millicores,
               lambda c: recommended_cell(c.recommendation.cpu_request_millicores, c.cpu_request_millicores,
                                      format_millicores, c.recommendation.cpu_reason), group="CPU"),
        figure("cpu_idle", "CPU idle", lambda c: c.cpu_idle_millicores, format_millicores,
               reason("cpu_idle_millicores")),
        figure("memory_request", "memory request", lambda c: c.memory_request_bytes, format_bytes, requests),
        figure("memory_limit", "memory limit", lambda c: c.memory_limit_bytes, format_bytes, requests),
        figure("memory_peak", "memory peak", lambda c: c.memory_working_set_max_bytes, format_bytes,
               reason("memory_working_set_max_bytes")),
        Column("memory_recommended", "memory recommended", lambda c: c.recommendation.memory_request_bytes,
               lambda c: recommended_cell(c.recommendation.memory_request_bytes, c.memory_request_bytes, format_bytes,
                                      c.recommendation.memory_reason), group="memory"),
        figure("memory_idle", "memory idle", lambda c: c.memory_idle_bytes, format_bytes,
               reason("memory_idle_bytes")),
        Column("confidence", "confidence", lambda c: c.recommendation.confidence, _confidence_cell),
        Column("savings", f"savings a month ({currency})" if currency else "savings a month",
               savings_per_month, lambda c: Cell(_amount(savings_per_month(c)))),
        Column("flags", "risks", lambda c: len(c.flags), _flag_cell, align="text"),
    ]


def group_columns(workloads: bool) -> list[Column]:
    """The columns of the namespaces table, or with `workloads` of the workloads table, with their idle cost and
    savings a month."""
    def total(key: str, label: str, value: Callable[[Totals], float], text: Callable[[float], str],
              why: Callable[[Totals], str | None] = lambda t: None) -> Column:
        return Column(key, label, lambda g: value(g.totals), lambda g: Cell(text(value(g.totals)), why(g.totals)),
                      group=label.split()[0] if " " in label else "")

    name = [Column("namespace", "namespace", lambda g: g.namespace,
                   lambda g: Cell(g.namespace, href=None if workloads else g.href), False, "text")]
    if workloads:
        name.append(Column("workload", "workload", lambda g: g.workload,
                           lambda g: Cell(g.workload or "", href=g.href), False, "text"))
    return [
        *name,
        total("containers", "containers", lambda t: t.containers, str),
        total("cpu_requested", "CPU requested", lambda t: t.cpu_requested_millicores, format_cores),
        total("cpu_used", "CPU used", lambda t: t.cpu_used_millicores, format_cores),
        total("cpu_idle", "CPU idle", lambda t: t.cpu_idle_millicores, format_cores,
              lambda t: _share(t.cpu_idle_millicores, t.cpu_requested_millicores)),
        total("memory_requested", "memory requested", lambda t: t.memory_requested_bytes, format_bytes),
        total("memory_used", "memory used", lambda t: t.memory_used_bytes, format_bytes),
        total("memory_idle", "memory idle", lambda t: t.memory_idle_bytes, format_bytes,
              lambda t: _share(t.memory_idle_bytes, t.memory_requested_bytes)),
        Column("idle_cost", "idle cost a month", lambda g: g.totals.costs.idle_per_month,
               lambda g: Cell(_amount(g.totals.costs.idle_per_month))),
        Column("savings", "savings a month", lambda g: g.totals.costs.savings_per_month,
               lambda g: Cell(_amount(g.totals.costs.savings_per_month))),
        Column("flags", "risks", lambda g: sum(g.totals.flags.values()), _totals_flag_cell),
    ]


def recommended_cell(value: float | None, current: float | None, text: Callable[[float | None], str], why: str) -> Cell:
    """A recommendation, marked by an arrow (not only its colour) as below or above the current request."""
    if value is None:
        return Cell("not enough data", why, css="nodata")
    if current is None or value == current:
        return Cell(text(value), why, css="rec")
    lower = value < current
    return Cell(f"{DOWN if lower else UP} {text(value)}",
                f"{'below' if lower else 'above'} the request of {text(current)}: {why}",
                css="rec down" if lower else "rec up")


# The report's named orders (its `sort` parameter) as the column each sorts: a page asked with
# `sort=risk` opens sorted by its risks column.
SORT_COLUMNS = {"idle_cpu": ("cpu_idle", "cpu_idle"), "idle_memory": ("memory_idle", "memory_idle"),
                "cpu_usage": ("cpu_p95", "cpu_used"), "memory_usage": ("memory_peak", "memory_used"),
                "cpu_request": ("cpu_request", "cpu_requested"),
                "memory_request": ("memory_request", "memory_requested"),
                "risk": ("flags", "flags"), "name": ("namespace", "namespace")}


def _flag_cell(c: ExplainedContainer) -> Cell:
    if not c.flags:
        return Cell("none", css="flags none")
    return Cell(", ".join(FLAG_LABELS[f.flag] for f in c.flags), "; ".join(f.reason for f in c.flags), css="flags")


def _totals_flag_cell(g: GroupRow) -> Cell:
    counts = g.totals.flags
    if not counts:
        return Cell("none", css="flags none")
    return Cell(str(sum(counts.values())), ", ".join(f"{n} {FLAG_LABELS[flag]}" for flag, n in sorted(counts.items())),
                css="flags")


def _confidence_cell(c: ExplainedContainer) -> Cell:
    r = c.recommendation
    low = " (low)" if r.low_confidence else ""
    return Cell(f"{r.confidence:.0%}{low}", r.confidence_reason or None, css="low" if low else "")


def _amount(value: float) -> str:
    return f"{value:,.2f}"


def _share(idle: float, requested: float) -> str | None:
    return f"{idle / requested:.0%} of what is requested" if requested else None
