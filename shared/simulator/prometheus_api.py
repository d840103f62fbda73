"""A Prometheus HTTP API over a scenario's cAdvisor series, on loopback.

It answers `/api/v1/query` and `/api/v1/query_range` (GET or form POST) with Prometheus' JSON
shapes, evaluating the PromQL subset in promql.py over samples computed from the scenario, plus
buildinfo, metric names and the readiness endpoints. Test knobs reproduce what large or sick
Prometheus servers do: `max_series` makes wide selections fail with the real 422 "too many
samples" error (the collector then splits by namespace), `drop_fraction` leaves out a stable share
of containers (missing scrapes), and `inject` adds errors, hangs and malformed bodies. Every query
text is appended to `queries`.
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
from shared.simulator.cadvisor import MetricNames, Series, cadvisor_series
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
        chosen = [(one.labels, one.sample) for one in candidates]
        if self._max_series is not None and len(chosen) > self._max_series:
            raise _TooManySamples
        return chosen


class PrometheusApiServer(LoopbackServer):
    """The simulated Prometheus. `bearer_token`, when set, is required on every request."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time,
                 names: MetricNames = MetricNames(), bearer_token: str | None = None) -> None:
        super().__init__()
        self.clock, self.names, self.bearer_token = clock, names, bearer_token
        self.queries: list[str] = []
        self.drop_fraction = 0.0
        self.max_series: int | None = None
        self._lock = threading.Lock()
        self._series_by_metric: dict[str, list[Series]] = {}
        self._scenario = scenario
        self.set_scenario(scenario)

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Answer from another scenario's series from now on."""
        by_metric: dict[str, list[Series]] = {}
        for one in cadvisor_series(scenario, self.names):
            by_metric.setdefault(one.metric, []).append(one)
        with self._lock:
            self._scenario, self._series_by_metric = scenario, by_metric

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
            with self._lock:
                return _success(sorted(self._series_by_metric))
        if request.path not in ("/api/v1/query", "/api/v1/query_range"):
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if request.method not in ("GET", "POST"):
            return Response(405, b"Method Not Allowed\n", "text/plain; charset=utf-8")
        params = _params(request)
        try:
            if request.path == "/api/v1/query":
                return self._instant_query(params)
            return self._range_query(params)
        except _BadParameter as exc:
            return _error(400, "bad_data", str(exc))
        except _TooManySamples:
            return _error(422, "execution", _TOO_MANY_SAMPLES)

    # --- queries ---------------------------------------------------------------------------------

    def _evaluator(self) -> promql.Evaluator:
        with self._lock:
            by_metric = self._series_by_metric
        return promql.Evaluator(_Source(by_metric, self.drop_fraction, self.max_series))

    def _instant_query(self, params: dict[str, str]) -> Response:
        text = _query_text(params)
        _timeout(params)
        t_ms = _time_ms(params, "time") if params.get("time") else round(self.clock() * 1000)
        try:
            result = self._evaluator().instant(promql.parse(text), t_ms)
        except promql.Unsupported:
            result = []
        if isinstance(result, float):
            return _success({"resultType": "scalar", "result": [_timestamp(t_ms), _format(result)]})
        if result and isinstance(result[0][1], list):  # a bare range selector
            return _success({"resultType": "matrix", "result": [
                {"metric": _sorted(labels), "values": [[_timestamp(ts), _format(v)] for ts, v in points]}
                for labels, points in result]})
        return _success({"resultType": "vector", "result": [
            {"metric": _sorted(labels), "value": [_timestamp(t_ms), _format(value)]}
            for labels, value in cast(promql.Vector, result)]})

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
