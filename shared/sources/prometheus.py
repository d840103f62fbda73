"""A Prometheus HTTP API client for instant queries, with a timeout and a response size bound.

Errors say which kind they are, because the collector reacts differently: a query that is too big
for one answer is split by namespace; an unreachable server makes the run `partial`. An answer that
says "not now" (429, 502, 503, 504: overloaded, restarting, a proxy's gateway error) is not "too
big": the same query is asked once more after a backoff (or the wait its Retry-After asks for), and
if the server still refuses it is unavailable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import requests

from shared.core.deadline import Deadline
from shared.core.retry import RetryPolicy, TryAgain, retry_after_seconds, with_retries

if TYPE_CHECKING:
    from shared.core.settings import Settings

Sample = tuple[dict[str, str], float]

# Answers that say the query is too big (a proxy's 413/414, Prometheus' 422 "too many samples"): split it.
TOO_LARGE_STATUSES = frozenset({413, 414, 422})
# Answers that say "not now": asked again, the same way.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRY_POLICY = RetryPolicy(max_attempts=2, backoff_seconds=1.0, max_backoff_seconds=1.0, max_retry_after_seconds=10.0)
"""One more try after a second or so (or a Retry-After up to 10 s): a restart or a burst passes, an outage does not."""


class PrometheusError(Exception):
    """A query failed; the message says why in words an operator can act on."""


class PrometheusUnavailable(PrometheusError):
    """The server cannot be reached or did not answer in time."""


class QueryTooLarge(PrometheusError):
    """The answer was too large or the server refused the query's size: split it."""


@dataclass
class PrometheusStats:
    """What one client did: queries sent and seconds spent waiting on Prometheus."""

    queries: int = 0
    seconds: float = 0.0


class PrometheusClient:
    """Instant queries against `PROMETHEUS_URL`, each under the configured timeout."""

    def __init__(self, settings: Settings, deadline: Deadline | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self._url = settings.prometheus_url
        self._timeout = settings.prometheus_timeout_seconds
        self._max_bytes = settings.prometheus_max_response_bytes
        self._deadline = deadline or Deadline(None)
        self._sleep = sleep
        self._session = requests.Session()
        if settings.prometheus_bearer_token is not None:
            token = settings.prometheus_bearer_token.get_secret_value()
            self._session.headers["Authorization"] = f"Bearer {token}"
        self.stats = PrometheusStats()

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_vector(self, promql: str, at: float) -> list[Sample]:
        """Evaluate `promql` at time `at`; a vector of (labels, value)."""
        data = self._get_json("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        result = data.get("data") or {}
        if result.get("resultType") != "vector":
            raise PrometheusError(f"expected a vector, got {result.get('resultType')!r} for {promql}")
        try:
            return [(item["metric"], float(item["value"][1])) for item in result.get("result") or ()]
        except (KeyError, IndexError, TypeError, ValueError):
            raise PrometheusError(f"malformed vector in the answer to {promql}") from None

    def metric_names(self) -> set[str]:
        """Every metric name the server knows (used by health and diagnose checks)."""
        data = self._get_json("/api/v1/label/__name__/values", {})
        return set(data.get("data") or ())

    def build_info(self) -> dict:
        """The server's version and build details (the API's `data`); empty when it gives none."""
        return self._get_json("/api/v1/status/buildinfo", {}).get("data") or {}

    def _get_json(self, path: str, params: dict[str, str]) -> dict:
        """The answer's JSON; an answer that says "not now" is asked for once more before giving up."""
        tried = with_retries(lambda: self._answer(path, params), _worth_retrying, RETRY_POLICY, sleep=self._sleep,
                             deadline=self._deadline)
        answer = tried.result
        if isinstance(answer, NotNow):
            raise PrometheusUnavailable(f"Prometheus answered {answer.status} ({tried.attempts} "
                                        f"attempt{'s' if tried.attempts > 1 else ''}): {answer.error}")
        return answer

    def _answer(self, path: str, params: dict[str, str]) -> dict | NotNow:
        """One request: the JSON of a successful answer, NotNow, or the PrometheusError that says what failed."""
        timeout = self._deadline.timeout(self._timeout)
        started = time.perf_counter()
        self.stats.queries += 1
        try:
            # POST keeps long selectors out of the URL (414 URI too large); GET for the metadata calls.
            if "query" in params:
                response = self._session.post(self._url + path, data=params, timeout=timeout, stream=True)
            else:
                response = self._session.get(self._url + path, params=params, timeout=timeout, stream=True)
            body = _read_bounded(response, self._max_bytes)
        except requests.Timeout:
            self._deadline.check("waiting for Prometheus")
            raise PrometheusUnavailable(f"Prometheus at {self._url} did not answer within {timeout:.1f}s") from None
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"Prometheus at {self._url} unreachable: {type(exc).__name__}") from None
        finally:
            self.stats.seconds += time.perf_counter() - started
        if response.status_code in TOO_LARGE_STATUSES:
            raise QueryTooLarge(f"Prometheus answered {response.status_code}: {_error_text(body)}")
        if response.status_code in UNAVAILABLE_STATUSES:
            return NotNow(response.status_code, _error_text(body),
                          retry_after_seconds(response.headers.get("Retry-After")))
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise PrometheusError(
                f"Prometheus answered {response.status_code} with a body that is not JSON"
            ) from None
        if response.status_code >= 300 or data.get("status") != "success":
            raise PrometheusError(f"Prometheus answered {response.status_code}: {_error_text(body)}")
        return data


@dataclass(frozen=True)
class NotNow:
    """An answer that asks to come back later: its status, error text and Retry-After."""

    status: int
    error: str
    retry_after_seconds: float | None


def _worth_retrying(answer: dict | NotNow) -> TryAgain | None:
    return TryAgain(answer.retry_after_seconds) if isinstance(answer, NotNow) else None


def _read_bounded(response: requests.Response, max_bytes: int) -> bytes:
    """The body, or QueryTooLarge as soon as it grows past `max_bytes`."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise QueryTooLarge(f"answer of {declared} bytes exceeds PROMETHEUS_MAX_RESPONSE_BYTES={max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise QueryTooLarge(f"answer exceeds PROMETHEUS_MAX_RESPONSE_BYTES={max_bytes}")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("error") or "")[:300]
    except (ValueError, AttributeError):
        return body[:300].decode("utf-8", "replace").strip()
