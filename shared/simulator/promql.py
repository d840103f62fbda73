"""Just enough PromQL to answer the monitor's queries as Prometheus 2.42 answers them.

Supported: selectors with =, !=, =~, !~ matchers; range selectors `[d]`; subqueries `[d:s]`;
rate, increase and the *_over_time functions; sum/max/min/avg/count with `by (...)` or
`without (...)`; + - * / between vectors (one-to-one on all labels) and numbers; comparisons
with a number as filters (`> 1`); `and`, optionally `on (...)`. Anything else raises
`Unsupported`, which the simulated server answers like a query about a metric that does not
exist: an empty vector.

Samples lie on a fixed scrape grid (every 60 s, at multiples of 60 s). The semantics are the real
ones where they change numbers: range selectors include both ends [t-d, t], rate and increase
extrapolate as Prometheus' extrapolatedRate does, subquery steps are aligned to multiples of the
step. So a query here and the same query on a Prometheus holding the same samples agree.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Labels = dict[str, str]
Vector = list[tuple[Labels, float]]
Matrix = list[tuple[Labels, list[tuple[int, float]]]]  # timestamps in milliseconds


class Unsupported(ValueError):
    """The query uses PromQL this simulator does not implement (or is not PromQL at all)."""


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _anchored(self.value).fullmatch(actual) is not None  # PromQL regexes are fully anchored
        return found if self.op == "=~" else not found


@functools.lru_cache(maxsize=256)
def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class SeriesSource(Protocol):
    """Where samples come from: series of a metric matching all matchers, each a sampler t -> value."""

    scrape_interval_ms: int

    def select(
        self, metric: str, matchers: tuple[Matcher, ...],
    ) -> list[tuple[Labels, Callable[[float], float | None]]]: ...


# --- syntax tree -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True, slots=True)
class RangeOf:
    expr: Node
    range_ms: int
    step_ms: int | None  # None: a range selector; else a subquery (0 = default step)


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    arg: Node


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    by: tuple[str, ...] | None
    expr: Node
    without: bool = False  # `by` lists the labels to drop instead


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    on: tuple[str, ...] | None = None  # `and on (...)`: the labels that match the sides


Node = Number | Selector | RangeOf | Call | Aggregate | Binary

_TOKEN = re.compile(r"""\s*(?:
    (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>=~|!=|!~|==|>=|<=|[-+*/=(){}\[\],:<>])
)""", re.VERBOSE)
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
_AGGREGATIONS = {"sum", "max", "min", "avg", "count"}
_RANGE_FUNCTIONS = {"rate", "increase", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
                    "count_over_time"}
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": lambda a, b: a / b if b else (math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)),
}


def parse_duration_ms(text: str) -> int:
    """`5m`, `1h30m`, `300s` in milliseconds; ValueError otherwise."""
    if not re.fullmatch(r"(?:\d+(?:ms|[smhdwy]))+", text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(amount) * _UNIT_MS[unit] for amount, unit in _DURATION_PART.findall(text))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise Unsupported(f"unexpected character at {position}: {text[position:position + 10]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise Unsupported(f"expected {value or kind}, found {token!r}")
        self.position += 1
        return token

    def parse(self) -> Node:
        node = self.expression()
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        return node

    def expression(self) -> Node:
        node = self.comparison()
        while self.peek() == ("ident", "and"):
            self.take("and")
            on = None
            if self.peek() == ("ident", "on"):
                self.take("on")
                on = self.label_list()
            node = Binary("and", node, self.comparison(), on)
        return node

    def comparison(self) -> Node:
        node = self.additive()
        while self.peek()[0] == "op" and self.peek()[1] in _COMPARISONS:
            node = Binary(self.take(), node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            node = Binary(self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.postfix()
        while self.peek() in (("op", "*"), ("op", "/")):
            node = Binary(self.take(), node, self.postfix())
        return node

    def postfix(self) -> Node:
        node = self.primary()
        while self.peek() == ("op", "["):
            self.take("[")
            range_ms = parse_duration_ms(self.take(kind="duration"))
            step_ms: int | None = None
            if self.peek() == ("op", ":"):
                self.take(":")
                step_ms = parse_duration_ms(self.take(kind="duration")) if self.peek()[0] == "duration" else 0
            self.take("]")
            node = RangeOf(node, range_ms, step_ms)
        return node

    def primary(self) -> Node:
        kind, token = self.peek()
        if kind == "number":
            self.take()
            return Number(float(token))
        if token == "(":
            self.take("(")
            node = self.expression()
            self.take(")")
            return node
        name = self.take(kind="ident")
        if name in _AGGREGATIONS:
            grouping = self.grouping()
            self.take("(")
            expr = self.expression()
            self.take(")")
            grouping = grouping if grouping is not None else self.grouping()
            by, without = grouping if grouping is not None else (None, False)
            return Aggregate(name, by, expr, without)
        if self.peek() == ("op", "("):
            if name not in _RANGE_FUNCTIONS:
                raise Unsupported(f"function {name} is not simulated")
            self.take("(")
            arg = self.expression()
            self.take(")")
            return Call(name, arg)
        return Selector(name, self.matchers())

    def grouping(self) -> tuple[tuple[str, ...], bool] | None:
        """`by (...)` or `without (...)`: the labels, and whether they are the ones dropped."""
        if self.peek()[1] not in ("by", "without"):
            return None
        without = self.take() == "without"
        return self.label_list(), without

    def label_list(self) -> tuple[str, ...]:
        self.take("(")
        labels = []
        while self.peek()[1] != ")":
            labels.append(self.take(kind="ident"))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return tuple(labels)

    def matchers(self) -> tuple[Matcher, ...]:
        if self.peek() != ("op", "{"):
            return ()
        self.take("{")
        matchers = []
        while self.peek()[1] != "}":
            name = self.take(kind="ident")
            op = self.take(kind="op")
            if op not in ("=", "!=", "=~", "!~"):
                raise Unsupported(f"bad matcher operator {op!r}")
            raw = self.take(kind="string")
            matchers.append(Matcher(name, op, ast.literal_eval(raw)))
            if self.peek()[1] == ",":
                self.take(",")
        self.take("}")
        return tuple(matchers)


def parse(text: str) -> Node:
    """The syntax tree of `text`; Unsupported if it is outside the simulated subset."""
    try:
        return _Parser(text).parse()
    except (ValueError, SyntaxError) as exc:  # bad durations, bad string escapes
        raise Unsupported(str(exc)) from None


# --- evaluation --------------------------------------------------------------------------------

class Evaluator:
    """Evaluates one query against a source; selections are cached for the query's lifetime."""

    def __init__(self, source: SeriesSource) -> None:
        self.source = source
        self.samples_loaded = 0  # raw samples read, as Prometheus' stats count totalQueryableSamples
        self._selections: dict[Selector, list[tuple[Labels, Callable[[float], float | None]]]] = {}

    def instant(self, node: Node, t_ms: int) -> Vector | float | Matrix:
        """The value of `node` at `t_ms`: a vector, a scalar, or (for a bare range) a matrix."""
        if isinstance(node, RangeOf):
            matrix = self._range(node, t_ms)
            if isinstance(node.expr, Selector):
                return [({"__name__": node.expr.metric, **labels}, points) for labels, points in matrix]
            return matrix
        return self._instant(node, t_ms)

    def _select(self, selector: Selector) -> list[tuple[Labels, Callable[[float], float | None]]]:
        if selector not in self._selections:
            self._selections[selector] = self.source.select(selector.metric, selector.matchers)
        return self._selections[selector]

    def _instant(self, node: Node, t_ms: int) -> Vector | float:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Selector):  # the latest scrape, well within the 5-minute lookback
            interval = self.source.scrape_interval_ms
            at_seconds = t_ms // interval * interval / 1000
            latest: Vector = [({"__name__": node.metric, **labels}, value) for labels, sample in self._select(node)
                              if (value := sample(at_seconds)) is not None]
            self.samples_loaded += len(latest)
            return latest
        if isinstance(node, Call):
            if not isinstance(node.arg, RangeOf):
                raise Unsupported(f"{node.function} needs a range vector")
            return [(labels, value) for labels, points in self._range(node.arg, t_ms)
                    if (value := _range_function(node.function, points, node.arg, t_ms)) is not None]
        if isinstance(node, Aggregate):
            vector = self._instant(node.expr, t_ms)
            if isinstance(vector, float):
                raise Unsupported("aggregating a scalar")
            return _aggregate(node.op, node.by, vector, node.without)
        if isinstance(node, Binary):
            lhs, rhs = self._instant(node.lhs, t_ms), self._instant(node.rhs, t_ms)
            if node.op == "and":
                return _and(lhs, rhs, node.on)
            if node.op in _COMPARISONS:
                return _filter(node.op, lhs, rhs)
            return _binary(node.op, lhs, rhs)
        raise Unsupported("a range vector where an instant vector is expected")

    def _range(self, node: RangeOf, t_ms: int) -> Matrix:
        start_ms = t_ms - node.range_ms
        if node.step_ms is None:
            if not isinstance(node.expr, Selector):
                raise Unsupported("ranges apply to selectors")
            interval = self.source.scrape_interval_ms
            first_ms, last_ms = -(-start_ms // interval) * interval, t_ms // interval * interval
            grid = [(ts, ts / 1000) for ts in range(first_ms, last_ms + 1, interval)]
            matrix: Matrix = []
            for labels, sample in self._select(node.expr):  # labels without __name__: functions drop it
                points = [(ts, value) for ts, seconds in grid if (value := sample(seconds)) is not None]
                self.samples_loaded += len(points)
                if points:
                    matrix.append((labels, points))
            return matrix
        step = node.step_ms or 60_000  # Prometheus' default evaluation interval
        first = -(-start_ms // step) * step
        series: dict[tuple[tuple[str, str], ...], tuple[Labels, list[tuple[int, float]]]] = {}
        for ts in range(first, t_ms + 1, step):
            vector = self._instant(node.expr, ts)
            if isinstance(vector, float):
                raise Unsupported("subquery of a scalar")
            for labels, value in vector:
                series.setdefault(tuple(labels.items()), (labels, []))[1].append((ts, value))
        return list(series.values())


def _range_function(function: str, points: list[tuple[int, float]], node: RangeOf, t_ms: int) -> float | None:
    values = [value for _, value in points]
    if function in ("rate", "increase"):
        return _extrapolated_rate(points, t_ms - node.range_ms, t_ms, function == "rate")
    if function == "avg_over_time":
        return math.fsum(values) / len(values)
    if function == "max_over_time":
        return max(values)
    if function == "min_over_time":
        return min(values)
    if function == "sum_over_time":
        return math.fsum(values)
    return float(len(values))


def _extrapolated_rate(
    points: list[tuple[int, float]], range_start_ms: int, range_end_ms: int, is_rate: bool,
) -> float | None:
    """Prometheus' extrapolatedRate for counters (functions.go, v2.42)."""
    if len(points) < 2:
        return None
    (first_ms, first), (last_ms, last) = points[0], points[-1]
    result = last - first
    previous = 0.0
    for _, value in points:  # counter resets
        if value < previous:
            result += previous
        previous = value
    to_start = (first_ms - range_start_ms) / 1000
    to_end = (range_end_ms - last_ms) / 1000
    sampled = (last_ms - first_ms) / 1000
    average_gap = sampled / (len(points) - 1)
    if result > 0 and first >= 0:
        to_start = min(to_start, sampled * (first / result))
    threshold = average_gap * 1.1
    interval = sampled + (to_start if to_start < threshold else average_gap / 2)
    interval += to_end if to_end < threshold else average_gap / 2
    result *= interval / sampled
    return result / ((range_end_ms - range_start_ms) / 1000) if is_rate else result


def _aggregate(op: str, by: tuple[str, ...] | None, vector: Vector, without: bool = False) -> Vector:
    groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for labels, value in vector:
        if without:
            dropped = {*(by or ()), "__name__"}
            key = tuple(sorted((name, v) for name, v in labels.items() if name not in dropped))
        else:
            key = tuple((name, labels.get(name, "")) for name in by or ())
        groups.setdefault(key, []).append(value)
    result: Vector = []
    for key, values in groups.items():
        labels = {name: value for name, value in key if value}
        if op == "sum":
            result.append((labels, math.fsum(values)))
        elif op == "max":
            result.append((labels, max(values)))
        elif op == "min":
            result.append((labels, min(values)))
        elif op == "avg":
            result.append((labels, math.fsum(values) / len(values)))
        else:
            result.append((labels, float(len(values))))
    return result


def _and(lhs: Vector | float, rhs: Vector | float, on: tuple[str, ...] | None) -> Vector:
    """The elements of `lhs` with a match in `rhs`: on the `on` labels, else on all but the name."""
    if isinstance(lhs, float) or isinstance(rhs, float):
        raise Unsupported("and between scalars")

    def signature(labels: Labels) -> tuple[tuple[str, str], ...]:
        if on is not None:
            return tuple((name, labels.get(name, "")) for name in on)
        return tuple(sorted(_without_name(labels).items()))

    present = {signature(labels) for labels, _ in rhs}
    return [(labels, value) for labels, value in lhs if signature(labels) in present]


def _filter(op: str, lhs: Vector | float, rhs: Vector | float) -> Vector:
    """A comparison with a number: the elements of the vector side for which it holds."""
    compare = _COMPARISONS[op]
    if isinstance(lhs, list) and isinstance(rhs, float):
        return [(labels, value) for labels, value in lhs if compare(value, rhs)]
    if isinstance(lhs, float) and isinstance(rhs, list):
        return [(labels, value) for labels, value in rhs if compare(lhs, value)]
    raise Unsupported("comparisons are simulated between a vector and a number")


def _without_name(labels: Labels) -> Labels:
    return {name: value for name, value in labels.items() if name != "__name__"}


def _binary(op: str, lhs: Vector | float, rhs: Vector | float) -> Vector | float:
    apply = _ARITHMETIC[op]
    if isinstance(lhs, float) and isinstance(rhs, float):
        return apply(lhs, rhs)
    if isinstance(lhs, float):
        return [(_without_name(labels), apply(lhs, value)) for labels, value in rhs]  # type: ignore[union-attr]
    if isinstance(rhs, float):
        return [(_without_name(labels), apply(value, rhs)) for labels, value in lhs]
    right = {tuple(sorted(_without_name(labels).items())): value for labels, value in rhs}
    result: Vector = []
    for labels, value in lhs:
        plain = _without_name(labels)
        other = right.get(tuple(sorted(plain.items())))
        if other is not None:
            result.append((plain, apply(value, other)))
    return result
