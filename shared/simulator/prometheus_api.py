"""A Prometheus HTTP API over a scenario's cAdvisor series, on loopback.

It answers `/api/v1/query` and `/api/v1/query_range` (GET or form POST) with Prometheus' JSON
shapes, evaluating the PromQL subset in promql.py over samples computed from the scenario, plus
buildinfo, metric names and the readiness endpoints. Test knobs reproduce what large or sick
Prometheus servers do: `max_series` makes wide selections fail with the real 422 "too many
samples" error (the collector then splits by namespace), `drop_fraction` leaves out a stable share
of containers (missing scrapes), and `inject` adds errors, hangs and malformed bodies. Every query
text is appended to `queries`.

It plays a central store too: `copies` holds every series once per label set (two `cluster`
values, two scrape `job`s). It answers `stats=all` with the samples it loaded, and `match[]` on the
metric-name listing. `in_flight`/`max_in_flight` count queries being answered at once, and
`hold_queries` keeps the first ones waiting until enough are in flight: a test sees how many a
client sends concurrently without racing against it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qs

from shared.simulator import promql
from shared.simulator.cadvisor import MetricNames, Series, cadvisor_series, with_copies
from shared.simulator.httpserver import LoopbackServer, Request, Response
from shared.simulator.scenario import Scenario

_ERROR_TYPES = {400: "bad_data", 422: "execution", 500: "internal", 503: "unavailable", 504: "timeout"}
_TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
_MAX_POINTS = 11_000
_BUILD_INFO = {
    "version": "2.42.0", "revision": "225c61122d88b01d1f0eaaee0e05b6f3e0567ac0", "branch": "HEAD",
    "buildUser": "root@c67d48967507", "buildDate": "20230201-07:53:32", "goVersion": "go1.19.5",
}


class _TooManySamples(Exception):
    pass


class _BadParameter(Exception):
    pass


class _Source:
    """The series of one scenario, selected by metric and matchers, under the server's knobs."""

    scrape_interval_ms = 60_000

    def __init__(self, by_metric: dict[str, list[Series]], drop_fraction: float, max_series: int | None) -> None:
        self._by_metric, self._drop_fraction, self._max_series = by_metric, drop_fraction, max_series

    def select(
        self, metric: str, matchers: tuple[promql.Matcher, ...],
    ) -> list[tuple[dict[str, str], Callable[[float], float | None]]]:
        candidates = self._by_metric.get(metric, [])
        if self._drop_fraction:
            candidates = [one for one in candidates if (one.key % 100_000) / 100_000 >= self._drop_fraction]
        for matcher in matchers:
            candidates = [one for one in candidates if matcher.matches(one.labels)]
        if self._max_series is not None and len(candidates) > self._max_series:
            raise _TooManySamples
        return [(one.labels, one.sample) for one in candidates]


class PrometheusApiServer(LoopbackServer):
    """The simulated Prometheus. `bearer_token`, when set, is required on every request."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time,
                 names: MetricNames = MetricNames(), bearer_token: str | None = None,
                 copies: tuple[dict[str, str], ...] = ({},)) -> None:
        super().__init__()
        self.clock, self.names, self.bearer_token, self.copies = clock, names, bearer_token, copies
        self.queries: list[str] = []
        self.drop_fraction = 0.0
        self.max_series: int | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._flight = threading.Condition()
        self._hold: tuple[int, float, int] | None = None  # until in flight, at most seconds, let through first
        self._held_until: float | None = None
        self._series_by_metric: dict[str, list[Series]] = {}
        self._scenario = scenario
        self.set_scenario(scenario)

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    def set_scenario(self, scenario: Scenario, copies: tuple[dict[str, str], ...] | None = None) -> None:
        """Answer from another scenario's series from now on (held under `copies`, default: as now)."""
        self.copies = self.copies if copies is None else copies
        by_metric: dict[str, list[Series]] = {}
        for one in with_copies(cadvisor_series(scenario, self.names), self.copies):
            by_metric.setdefault(one.metric, []).append(one)
        with self._lock:
            self._scenario, self._series_by_metric = scenario, by_metric

    def hold_queries(self, until_in_flight: int, at_most_seconds: float, after: int = 0) -> None:
        """Let `after` queries through, then keep the next ones waiting until `until_in_flight` are being
        answered at once, or until `at_most_seconds` have passed since the first was held; then release
        them all and hold nothing more."""
        with self._flight:
            self._hold = (until_in_flight, at_most_seconds, after)

    # --- LoopbackServer --------------------------------------------------------------------------

    def record(self, request: Request) -> None:
        if request.path in ("/api/v1/query", "/api/v1/query_range"):
            query = _params(request).get("query")
            with self._lock:
                self.queries.append(query or "")

    def fault_response(self, status: int) -> Response:
        error_type = _ERROR_TYPES.get(status)
        if error_type is None:  # what a reverse proxy in front of Prometheus sends
            title = f"{status} {'Request Entity Too Large' if status == 413 else 'Error'}"
            page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                    f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
            return Response(status, page.encode(), "text/html")
        return _error(status, error_type, f"simulated {error_type} error")

    def handle(self, request: Request) -> Response:
        if self.bearer_token is not None and request.headers.get("Authorization") != f"Bearer {self.bearer_token}":
            return Response(401, b"Unauthorized\n", "text/plain; charset=utf-8")
        if request.path == "/-/ready":
            return Response(200, b"Prometheus Server is Ready.\n", "text/plain; charset=utf-8")
        if request.path == "/-/healthy":
            return Response(200, b"Prometheus Server is Healthy.\n", "text/plain; charset=utf-8")
        if request.path == "/api/v1/status/buildinfo":
            return _success(_BUILD_INFO)
        if request.path == "/api/v1/label/__name__/values":
            return self._metric_names(request.query.get("match[]", []))
        if request.path not in ("/api/v1/query", "/api/v1/query_range"):
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if request.method not in ("GET", "POST"):
            return Response(405, b"Method Not Allowed\n", "text/plain; charset=utf-8")
        params = _params(request)
        self._enter_flight()
        try:
            if request.path == "/api/v1/query":
                return self._instant_query(params)
            return self._range_query(params)
        except _BadParameter as exc:
            return _error(400, "bad_data", str(exc))
        except _TooManySamples:
            return _error(422, "execution", _TOO_MANY_SAMPLES)
        finally:
            with self._flight:
                self.in_flight -= 1

    def _enter_flight(self) -> None:
        """Count this query in flight; while a hold is set, wait for the others it asks for."""
        with self._flight:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._flight.notify_all()
            if self._hold is not None and self._hold[2] > 0:  # still letting queries through
                wanted, seconds, after = self._hold
                self._hold = (wanted, seconds, after - 1)
                return
            if self._hold is not None and self._held_until is None:
                self._held_until = time.monotonic() + self._hold[1]
            while self._hold is not None and self._held_until is not None:
                if self.in_flight >= self._hold[0] or time.monotonic() >= self._held_until or self._stopping.is_set():
                    self._hold, self._held_until = None, None
                    self._flight.notify_all()
                    break
                self._flight.wait(min(0.05, max(0.0, self._held_until - time.monotonic())))

    def _metric_names(self, match: list[str]) -> Response:
        """Every metric name, or those with a series matching one of the `match[]` selectors."""
        with self._lock:
            by_metric = self._series_by_metric
        if not match:
            return _success(sorted(by_metric))
        names = set()
        for text in match:
            try:
                node = promql.parse(text)
            except promql.Unsupported as exc:
                return _error(400, "bad_data", f'invalid parameter "match[]": {exc}')
            if not isinstance(node, promql.Selector):
                return _error(400, "bad_data", 'invalid parameter "match[]": not a series selector')
            if any(all(m.matches(one.labels) for m in node.matchers) for one in by_metric.get(node.metric, [])):
                names.add(node.metric)
        return _success(sorted(names))

    # --- queries ---------------------------------------------------------------------------------

    def _evaluator(self) -> promql.Evaluator:
        with self._lock:
            by_metric = self._series_by_metric
        return promql.Evaluator(_Source(by_metric, self.drop_fraction, self.max_series))

    def _instant_query(self, params: dict[str, str]) -> Response:
        text = _query_text(params)
        _timeout(params)
        t_ms = _time_ms(params, "time") if params.get("time") else round(self.clock() * 1000)
        evaluator = self._evaluator()
        try:
            result = evaluator.instant(promql.parse(text), t_ms)
        except promql.Unsupported:
            result = []
        loaded = {"samples": {"totalQueryableSamples": evaluator.samples_loaded}}
        stats = {"stats": loaded} if params.get("stats") else {}
        if isinstance(result, float):
            return _success({"resultType": "scalar", "result": [_timestamp(t_ms), _format(result)], **stats})
        if result and isinstance(result[0][1], list):  # a bare range selector
            return _success({"resultType": "matrix", "result": [
                {"metric": _sorted(labels), "values": [[_timestamp(ts), _format(v)] for ts, v in points]}
                for labels, points in result], **stats})
        return _success({"resultType": "vector", "result": [
            {"metric": _sorted(labels), "value": [_timestamp(t_ms), _format(value)]}
            for labels, value in cast(promql.Vector, result)], **stats})

    def _range_query(self, params: dict[str, str]) -> Response:
        text = _query_text(params)
        _timeout(params)
        start_ms, end_ms = _time_ms(params, "start"), _time_ms(params, "end")
        step_ms = _duration_ms(params, "step")
        if end_ms < start_ms:
            raise _BadParameter('invalid parameter "end": end timestamp must not be before start time')
        if step_ms <= 0:
            raise _BadParameter('invalid parameter "step": zero or negative query resolution step widths are not '
                                "accepted. Try a positive integer")
        if (end_ms - start_ms) // step_ms + 1 > _MAX_POINTS:
            raise _BadParameter("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                                "query resolution (?step=XX)")
        series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        try:
            node = promql.parse(text)
            if isinstance(node, promql.RangeOf):
                raise _BadParameter('invalid expression type "range vector" for range query, must be Scalar or '
                                    "instant Vector")
            evaluator = self._evaluator()
            for ts in range(start_ms, end_ms + 1, step_ms):
                result = evaluator.instant(node, ts)
                # not a range: the answer is a scalar or a vector
                vector: promql.Vector = [({}, result)] if isinstance(result, float) else cast(promql.Vector, result)
                for labels, value in vector:
                    entry = series.setdefault(tuple(sorted(labels.items())), {"metric": _sorted(labels), "values": []})
                    entry["values"].append([_timestamp(ts), _format(value)])
        except promql.Unsupported:
            series = {}
        return _success({"resultType": "matrix", "result": [series[key] for key in sorted(series)]})


def _params(request: Request) -> dict[str, str]:
    """Query-string and form parameters, first value of each, as Prometheus' FormValue reads them."""
    merged = {name: values[0] for name, values in request.query.items()}
    if request.method == "POST" and "x-www-form-urlencoded" in (request.headers.get("Content-Type") or ""):
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        merged = {name: values[0] for name, values in form.items()} | merged
    return merged


def _query_text(params: dict[str, str]) -> str:
    text = params.get("query", "")
    if not text.strip():
        raise _BadParameter('invalid parameter "query": 1:1: parse error: no expression found in input')
    return text


def _time_ms(params: dict[str, str], name: str) -> int:
    value = params.get(name, "")
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        return round(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        raise _BadParameter(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp') from None


def _duration_ms(params: dict[str, str], name: str) -> int:
    value = params.get(name, "")
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        return promql.parse_duration_ms(value)
    except ValueError:
        raise _BadParameter(f'invalid parameter "{name}": cannot parse "{value}" to a valid duration') from None


def _timeout(params: dict[str, str]) -> None:
    if params.get("timeout"):
        _duration_ms(params, "timeout")


def _sorted(labels: dict[str, str]) -> dict[str, str]:
    """Labels in Prometheus' order (sorted by name)."""
    return dict(sorted(labels.items()))


def _timestamp(t_ms: int) -> float | int:
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def _format(value: float) -> str:
    """A sample value as Prometheus writes it (Go's FormatFloat 'f', -1)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text:
        return format(Decimal(text), "f")
    return text.removesuffix(".0")


def _success(data: object) -> Response:
    return Response(200, json.dumps({"status": "success", "data": data}, separators=(",", ":")).encode())


def _error(status: int, error_type: str, message: str) -> Response:
    body = {"status": "error", "errorType": error_type, "error": message}
    return Response(status, json.dumps(body, separators=(",", ":")).encode())
