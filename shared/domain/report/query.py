"""What a report is asked for: the window, the filters, the order and how many containers to list.

The report function's query parameters and `k8s-monitor report`'s options are parsed here, the same
way for both, into a ReportQuery; a bad value is an InvalidInput naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.settings import Settings
from shared.domain.errors import InvalidInput
from shared.store.window_usage import Selection, Window, WindowError, parse_window

if TYPE_CHECKING:
    from shared.domain.report.explained import ExplainedContainer

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
PARAMETERS = ("namespace", "workload", "window", "sort", "limit")

# sort name -> (key, what it puts first); ties are broken by name.
SORTS: dict[str, tuple[Callable[[ExplainedContainer], Any], str]] = {
    "idle_cpu": (lambda c: -(c.cpu_idle_millicores or 0), "most idle requested CPU first"),
    "idle_memory": (lambda c: -(c.memory_idle_bytes or 0), "most idle requested memory first"),
    "cpu_usage": (lambda c: -(c.cpu_usage_p95_millicores or 0), "highest CPU p95 first"),
    "memory_usage": (lambda c: -(c.memory_working_set_max_bytes or 0), "highest memory peak first"),
    "cpu_request": (lambda c: -(c.cpu_request_millicores or 0), "largest CPU request first"),
    "memory_request": (lambda c: -(c.memory_request_bytes or 0), "largest memory request first"),
    "risk": (lambda c: -len(c.flags), "most risk flags first"),
    "savings": (lambda c: (c.recommendation.low_confidence, -c.costs.savings_per_month),
                "largest savings first, low confidence last"),
    "cost_to_fix_risk": (lambda c: -c.costs.cost_to_fix_risk_per_month, "largest cost to fix risk first"),
    "name": (lambda c: 0, "namespace, workload, container"),
}
DEFAULT_SORT = "idle_cpu"


@dataclass(frozen=True)
class ReportQuery:
    """What to report: the window, the filters, the order and how many containers to list."""

    window: Window
    namespace: str | None = None
    workload: str | None = None
    sort: str = DEFAULT_SORT
    limit: int | None = DEFAULT_LIMIT  # None: every container

    @property
    def selection(self) -> Selection:
        """The namespace and workload filters, as the usage reader takes them."""
        return Selection(self.namespace, self.workload)


def parse_report_query(
    params: Mapping[str, str], settings: Settings, now: float, default_limit: int | None = DEFAULT_LIMIT,
    extra: tuple[str, ...] = (),
) -> ReportQuery:
    """Query parameters (namespace, workload, window, sort, limit, and `extra` ones the caller reads)
    into a ReportQuery, or InvalidInput naming the parameter. The window defaults to REPORT_WINDOW_DAYS."""
    unknown = sorted(set(params) - {*PARAMETERS, *extra})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown parameter; use {', '.join((*PARAMETERS, *extra))}")
    max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    try:
        window = parse_window(params.get("window") or f"{settings.report_window_days:g}d", now, max_days)
    except WindowError as exc:
        raise InvalidInput(f"window: {exc}") from None
    sort = params.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise InvalidInput(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    return ReportQuery(window, _name(params, "namespace"), _name(params, "workload"), sort,
                       _limit(params.get("limit"), default_limit))


def _name(params: Mapping[str, str], parameter: str) -> str | None:
    value = params.get(parameter)
    if value is None or value == "":
        return None
    if len(value) > 253 or any(ch.isspace() for ch in value):
        raise InvalidInput(f"{parameter}: {value[:80]!r} is not a Kubernetes name")
    return value


def _limit(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    if value == "all":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(f"limit: {value[:20]!r} is not a number from 1 to {MAX_LIMIT} (or 'all')")
    return int(value)
