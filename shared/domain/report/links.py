"""The addresses of the page's links: every one the current view's parameters with some changed.

A header link sorts, a page link pages, a row's link opens a namespace or a workload, a download
asks the same report as JSON or CSV: each keeps the window and filters it was made under, so what
the page shows is always what its address says, ready to share.
"""

from __future__ import annotations

from urllib.parse import urlencode

from shared.domain.report.explained import ExplainedContainer
from shared.domain.report.tables import Column

DOWNLOADS = ("json", "csv")
# The page's own parameters, beside the report's (namespace, workload, window, sort, limit).
PAGE_PARAMETERS = ("format", "group", "order", "dir", "page", "flag")
# What every link and the filter form keep: the window, the format and the cluster (of a shared store).
_KEPT = ("window", "format", "cluster")


class PageLinks:
    """Addresses of the page's links: the current parameters with some changed (a page, an order, a
    view), so a link keeps the window and filters it was made under."""

    def __init__(self, params: dict[str, str]):
        self._params = {name: value for name, value in params.items() if value}

    def changed(self, **changes: str | None) -> str:
        """The current parameters with `changes` (None removes one); back to the first page unless
        `page` is among them."""
        merged = {name: value for name, value in self._params.items() if name != "page"}
        for name, value in changes.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return "?" + urlencode(merged)

    def hidden_fields(self) -> list[tuple[str, str]]:
        """What the filter form keeps of the current view that it has no control for: order, format, cluster."""
        return [(name, self._params[name]) for name in ("order", "dir", "format", "cluster") if name in self._params]

    def view(self, namespace: str | None = None, workload: str | None = None) -> str:
        """Another view under the same window (and cluster): the cluster, a namespace or a workload."""
        kept: dict[str, str] = {name: self._params[name] for name in _KEPT if name in self._params}
        for name, value in (("namespace", namespace), ("workload", workload)):
            if value:
                kept[name] = value
        return "?" + urlencode(kept)

    def workload_of(self, c: ExplainedContainer) -> str:
        """The view of the workload `c` belongs to."""
        return self.view(c.namespace, f"{c.workload_kind}/{c.workload_name}")

    def sorted_by(self, column: Column, order: str, descending: bool) -> str:
        """The header's link: sorted by `column`; the other way round when it is the current order."""
        current = column.key == order
        direction = ("asc" if descending else "desc") if current else column.first_direction
        return self.changed(order=column.key, dir=direction)

    def page(self, number: int) -> str:
        """The link to page `number` of the same table."""
        return self.changed(page=str(number))

    def downloads(self) -> list[tuple[str, str]]:
        """(format, address) of the downloads: the same report as JSON or CSV, each with its own
        default number of rows (the page's `limit` is its rows per page)."""
        kept = {name: value for name, value in self._params.items() if name not in (*PAGE_PARAMETERS, "limit")}
        return [(fmt, "?" + urlencode({**kept, "format": fmt})) for fmt in DOWNLOADS]
