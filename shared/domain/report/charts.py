"""Charts of one container's usage per pod against its request, limit, p95 and recommendation.

The geometry is computed here, as a Chart; templates/chart.html draws it. The plot is an SVG whose
coordinates run 0-1000 across and 0-100 down, stretched to the width of the page
(preserveAspectRatio="none", strokes that do not scale), while the axis labels are text in SVGs of
their own placed by percentages: the labels stay legible from a phone to a wide screen. The time
axis spans the samples present (not the whole window), the value axis the highest value drawn.
Lines are told apart by their dash pattern as well as their colour, so they keep their meaning in
greyscale. `data` is what the page's script shows when a chart is hovered or focused: the stored
values, not read back from the drawing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter

from shared.core.formats import GiB, MiB, format_bytes, format_millicores, utc_minute
from shared.core.timeutil import DAY_SECONDS, HOUR_SECONDS
from shared.store.usage_series import Point

PLOT_WIDTH, PLOT_HEIGHT = 1000, 100  # the plot's own units, stretched to the page
_TIME_STEPS = (300, 600, 900, 1800, HOUR_SECONDS, 2 * HOUR_SECONDS, 3 * HOUR_SECONDS, 6 * HOUR_SECONDS,
               12 * HOUR_SECONDS, DAY_SECONDS, 2 * DAY_SECONDS, 7 * DAY_SECONDS, 14 * DAY_SECONDS)
_MAX_TIME_TICKS = 7


@dataclass(frozen=True)
class Line:
    """A drawn figure: `key` names it in the page's data and CSS (`line-avg`), `label` in the legend."""

    key: str
    label: str
    figure: str = ""  # the Point attribute of a line over time; empty for a level (p95, recommended)
    step: bool = False  # drawn as steps (requests and limits change at a moment, they do not slope)


@dataclass(frozen=True)
class Kind:
    """CPU or memory: which Point attributes, how values read, and the units the axis counts in."""

    name: str
    title: str
    lines: tuple[Line, ...]
    band: tuple[str, str]  # the Point attributes of the pods' lowest and highest sample
    formatter: Callable[[float], str]
    units: tuple[float, ...]
    digits: int  # the data's rounding: what the page shows on hover


CPU = Kind("cpu", "CPU", (
    Line("avg", "average", "cpu_avg_millicores"), Line("max", "peak", "cpu_max_millicores"),
    Line("request", "request", "cpu_request_millicores", step=True),
    Line("limit", "limit", "cpu_limit_millicores", step=True),
    Line("p95", "p95"), Line("recommended", "recommended")),
    ("cpu_low_millicores", "cpu_high_millicores"), format_millicores, (1,), 1)
MEMORY = Kind("memory", "memory", (
    Line("avg", "average", "memory_avg_bytes"), Line("max", "peak", "memory_max_bytes"),
    Line("request", "request", "memory_request_bytes", step=True),
    Line("limit", "limit", "memory_limit_bytes", step=True),
    Line("recommended", "recommended")),
    ("memory_low_bytes", "memory_high_bytes"), format_bytes, (MiB, GiB), 0)
BAND = Line("band", "lowest to highest pod")
# Usage on top of the levels it is judged against; the p95 over the recommendation it usually equals.
_DRAW_ORDER = ("max", "request", "limit", "recommended", "p95", "avg")
_LEGEND_ORDER = ("avg", "band", "max", "request", "limit", "p95", "recommended")


@dataclass(frozen=True)
class Marker:
    """A moment to mark on the charts, such as a change of request or limit, with what happened."""

    ts: int
    label: str


@dataclass(frozen=True)
class Tick:
    """An axis label at `at` percent (from the left for time, from the top for values)."""

    at: str
    text: str
    css: str = ""
    anchor: str = "middle"  # of the text at `at`: start or end at the edges, so it stays inside


@dataclass(frozen=True)
class Drawn:
    """One line's SVG geometry: `paths` are polyline point lists, one per stretch without gaps."""

    line: Line
    paths: list[str]


@dataclass(frozen=True)
class PlacedMarker:
    """A Marker at `x` (plot units) and `at` percent across, with its time for people."""

    marker: Marker
    x: str
    at: str
    time: str


@dataclass
class Chart:
    """What templates/chart.html draws, and `data`, the values the page's script reads out."""

    kind: Kind
    title: str
    start: int  # the time axis, Unix seconds
    end: int
    points: int  # steps with a value; 0: the chart says there are no samples
    values: list[Tick]
    times: list[Tick]
    grid: list[str]  # y of the horizontal gridlines, plot units
    band: list[str]  # polygon point lists
    lines: list[Drawn]
    markers: list[PlacedMarker]
    data: dict
    legend: list[Line] = field(default_factory=list)

    @property
    def span_text(self) -> str:
        """The time axis for people: `2026-01-11 09:00 UTC to 13:00` or across days in full."""
        first, last = utc_minute(self.start), utc_minute(self.end)
        return f"{first} to {last[11:] if first[:10] == last[:10] else last}"


def usage_chart(kind: Kind, title: str, points: Sequence[Point], levels: dict[str, float | None],
                interval_seconds: int, markers: Sequence[Marker] = ()) -> Chart:
    """The chart of `kind` over the steps in `points` (oldest first): usage, the pods' spread, request
    and limit over time, and `levels` (p95, recommended) across. A gap where no sample came for more
    than a step and a collection interval."""
    start, end = _axis(points)
    span = end - start
    drawn_lines = [line for line in kind.lines if line.figure]
    level_lines = [line for line in kind.lines if not line.figure and levels.get(line.key) is not None]
    values = [getattr(p, line.figure) for p in points for line in drawn_lines]
    values += [getattr(p, kind.band[1]) for p in points] + [levels[line.key] for line in level_lines]
    step, steps = _value_axis(max((v for v in values if v is not None), default=0), kind.units)
    top = step * steps

    def x(ts: float) -> str:
        return f"{PLOT_WIDTH * (ts - start) / span:.1f}"

    def y(value: float) -> str:
        return f"{PLOT_HEIGHT * (1 - value / top):.2f}"

    lines = []
    for line in drawn_lines:
        runs = _runs(points, attrgetter(line.figure), interval_seconds)
        shapes = [_steps(run) if line.step and len(run) > 1 else _dot(run, span) for run in runs]
        paths = [" ".join(f"{x(ts)},{y(v)}" for ts, v in shape) for shape in shapes]
        if paths:
            lines.append(Drawn(line, paths))
    for line in level_lines:
        level = y(levels[line.key] or 0)
        lines.append(Drawn(line, [f"0,{level} {PLOT_WIDTH},{level}"]))
    low, high = kind.band
    band = [" ".join([*(f"{x(ts)},{y(v)}" for ts, v, _ in run), *(f"{x(ts)},{y(v)}" for ts, _, v in reversed(run))])
            for run in _band_runs(points, low, high, interval_seconds)]
    shown = [m for m in markers if start <= m.ts <= end]
    count = sum(1 for p in points if getattr(p, drawn_lines[0].figure) is not None)
    legend = [line for line in (*kind.lines, BAND) if any(d.line == line for d in lines) or (line == BAND and band)]
    return Chart(
        kind, title, start, end, count,
        values=[Tick(f"{100 * (1 - step * k / top):.1f}", kind.formatter(step * k)) for k in range(steps + 1)],
        times=_time_ticks(start, end),
        grid=[y(step * k) for k in range(1, steps + 1)],
        band=band, lines=sorted(lines, key=lambda d: _DRAW_ORDER.index(d.line.key)),
        markers=[PlacedMarker(m, x(m.ts), f"{100 * (m.ts - start) / span:.1f}", utc_minute(m.ts)) for m in shown],
        data=_data(kind, points, levels, level_lines, shown),
        legend=sorted(legend, key=lambda line: _LEGEND_ORDER.index(line.key)),
    )


def _axis(points: Sequence[Point]) -> tuple[int, int]:
    """The time axis: from the first step with data to the last; a single step spans its length."""
    if not points:
        return 0, 1
    start, end = points[0].ts, points[-1].ts
    return (start, end) if end > start else (start, start + points[0].seconds)


def _value_axis(highest: float, units: tuple[float, ...]) -> tuple[float, int]:
    """(step, steps): the fewest round steps (1, 2, 2.5 or 5 x 10^k of the largest of `units` that
    `highest` holds twice, so memory reads 500Mi or 2Gi, never 1.95Gi), at most five, reaching just
    above `highest`: the axis ends close over the highest value drawn."""
    unit = next((u for u in reversed(units) if highest >= 2 * u), units[0])
    reach = max(highest * 1.04 / unit, 1)
    magnitude = 10 ** max(0, math.floor(math.log10(reach / 5)))  # whole units: 1m, 1Mi at least
    multiples = (1, 2, 2.5, 5, 10) if magnitude >= 10 else (1, 2, 5, 10)  # 2.5 of a unit is no round label
    step = next(m * magnitude for m in multiples if reach / (m * magnitude) <= 5)
    return step * unit, math.ceil(reach / step - 1e-9)


def _runs(points: Sequence[Point], value: Callable[[Point], float | None],
          interval_seconds: int) -> list[list[tuple[int, float]]]:
    """Stretches of known values, split where a value is missing or no step came for longer than a
    step and a collection interval (a late collection is not a gap; a missed one is)."""
    runs: list[list[tuple[int, float]]] = []
    previous: Point | None = None
    for p in points:
        v = value(p)
        if v is None:
            previous = None
            continue
        if previous is None or p.ts - previous.ts > previous.seconds + interval_seconds:
            runs.append([])
        runs[-1].append((p.ts, v))
        previous = p
    return runs


def _band_runs(points: Sequence[Point], low: str, high: str,
               interval_seconds: int) -> list[list[tuple[int, float, float]]]:
    """Stretches where both the lowest and highest pod sample are known, as (ts, low, high)."""
    by_ts = {p.ts: p for p in points}
    runs = _runs(points, lambda p: None if getattr(p, low) is None else getattr(p, high), interval_seconds)
    return [[(ts, getattr(by_ts[ts], low), v) for ts, v in run] for run in runs if len(run) > 1]


def _steps(run: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """A value held from each step to the next: corners only where it changes."""
    corners: list[tuple[float, float]] = [run[0]]
    for ts, v in run[1:]:
        if v != corners[-1][1]:
            corners += [(ts, corners[-1][1]), (ts, v)]
    if corners[-1][0] != run[-1][0]:
        corners.append((run[-1][0], corners[-1][1]))
    return corners


def _dot(run: list[tuple[int, float]], span: int) -> list[tuple[float, float]]:
    """A lone value as a short dash (a polyline of one point draws nothing)."""
    if len(run) > 1:
        return [(float(ts), v) for ts, v in run]
    ts, v = run[0]
    return [(ts, v), (ts + span / 200, v)]


def _time_ticks(start: int, end: int) -> list[Tick]:
    """Round UTC times across the axis: the smallest step giving at most _MAX_TIME_TICKS labels; every
    other one is `odd`, which narrow screens hide."""
    span = end - start
    step = next((s for s in _TIME_STEPS if span / s <= _MAX_TIME_TICKS), _TIME_STEPS[-1])
    first = -(-start // step) * step
    ticks = []
    for n, ts in enumerate(range(first, end + 1, step)):
        moment = datetime.fromtimestamp(ts, UTC)
        if step >= DAY_SECONDS or (moment.hour, moment.minute) == (0, 0):
            text = moment.strftime("%b %d").replace(" 0", " ")
        else:
            text = moment.strftime("%H:%M")
        at = 100 * (ts - start) / span
        anchor = "start" if at < 4 else "end" if at > 96 else "middle"
        ticks.append(Tick(f"{at:.1f}", text, "odd" if n % 2 else "", anchor))
    return ticks


def _data(kind: Kind, points: Sequence[Point], levels: dict[str, float | None], level_lines: list[Line],
          markers: list[Marker]) -> dict:
    """The values behind the chart for the page's script: times, each line's value per step (null
    where none), the levels and the markers; rounded as the page shows them."""
    def rounded(v: float | None) -> float | int | None:
        if v is None:
            return None
        return round(v) if kind.digits == 0 else round(v, kind.digits)

    low, high = kind.band
    series = {line.key: [rounded(getattr(p, line.figure)) for p in points] for line in kind.lines if line.figure}
    series["low"] = [rounded(getattr(p, low)) for p in points]
    series["high"] = [rounded(getattr(p, high)) for p in points]
    return {
        "kind": kind.name, "t": [p.ts for p in points], "series": series,
        "levels": {line.key: rounded(levels[line.key]) for line in level_lines},
        "labels": {line.key: line.label for line in (*kind.lines, BAND)},
        "markers": [[m.ts, m.label] for m in markers],
    }
