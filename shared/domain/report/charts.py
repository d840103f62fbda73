"""SVG line charts of one container's usage against its request and limit, for the report page.

The geometry (scales, round axis steps, gaps where samples are missing) is computed here, as a
Chart; templates/chart.svg draws it inside the page, autoescaped like the rest of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from shared.core.formats import utc_minute
from shared.store.usage_series import Point

CHART_WIDTH, CHART_HEIGHT = 540, 170
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 58, 10, 10, 24


@dataclass(frozen=True)
class Line:
    """One line of a chart: the Point attribute it draws, its label and its CSS class."""

    figure: str
    label: str
    css: str


# usage lines solid, request and limit dashed (by their CSS class)
CPU_LINES = (Line("cpu_avg_millicores", "average", "avg"), Line("cpu_max_millicores", "peak", "max"),
             Line("cpu_request_millicores", "request", "request"), Line("cpu_limit_millicores", "limit", "limit"))
MEMORY_LINES = (Line("memory_avg_bytes", "average", "avg"), Line("memory_max_bytes", "peak", "max"),
                Line("memory_request_bytes", "request", "request"), Line("memory_limit_bytes", "limit", "limit"))
CPU_UNITS = (1,)  # millicores
MEMORY_UNITS = (1024**2, 1024**3)  # MiB, GiB


@dataclass(frozen=True)
class GridLine:
    """A horizontal gridline at `y` (SVG units, formatted), labelled with its value at `label_y`."""

    y: str
    label_y: str
    text: str


@dataclass(frozen=True)
class TimeLabel:
    """A time on the x axis at `x` (SVG units, formatted), anchored start, middle or end."""

    x: str
    text: str
    anchor: str


@dataclass(frozen=True)
class Polyline:
    """One stretch of a line without gaps: `points` is the SVG points attribute."""

    line: Line
    points: str


@dataclass(frozen=True)
class Chart:
    """What templates/chart.svg draws: the axes' labels and the lines, in SVG units."""

    title: str
    levels: list[GridLine]
    times: list[TimeLabel]  # start, middle and end of the window
    polylines: list[Polyline]
    drawn: int  # points drawn; 0: the chart says there are no samples
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = _MARGIN_LEFT
    right: int = CHART_WIDTH - _MARGIN_RIGHT


def line_chart(title: str, points: list[Point], lines: tuple[Line, ...], start: int, end: int,
               formatter: Callable[[float], str], units: tuple[float, ...]) -> Chart:
    """A chart of `lines` over [start, end); gaps where data is missing. The y axis has four round
    steps of one of `units`."""
    values = [getattr(p, line.figure) for p in points for line in lines]
    step = _tick_step(max((v for v in values if v is not None), default=0), units)
    top = step * 4
    plot_w = CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    span = max(1, end - start)

    def x(ts: float) -> float:
        return _MARGIN_LEFT + plot_w * (ts - start) / span

    def y(value: float) -> float:
        return _MARGIN_TOP + plot_h * (1 - value / top)

    levels = [GridLine(f"{y(step * k):.1f}", f"{y(step * k) + 3:.1f}", formatter(step * k)) for k in range(5)]
    times = [TimeLabel(f"{x(start + span * k / 2):.1f}", utc_minute(start + span * k / 2), anchor)
             for k, anchor in enumerate(("start", "middle", "end"))]
    polylines, drawn = [], 0
    gap = _typical_step(points) * 2.5
    for line in lines:
        for segment in _segments(points, line.figure, gap):
            drawn += len(segment)
            polylines.append(Polyline(line, " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in segment)))
    return Chart(title, levels, times, polylines, drawn)


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
