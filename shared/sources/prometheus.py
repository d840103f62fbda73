"""A Prometheus HTTP API client for instant queries, with a timeout and a response size bound.

Errors say which kind they are, because the collector reacts differently: a query that is too big
for one answer is split by namespace; an unreachable server, or one that refuses the credentials,
tenant or path (which every query would meet alike), makes the run `partial`. An answer that says
"not now" (429, 502, 503, 504: overloaded, restarting, a proxy's gateway error) is not "too big":
the same query is asked once more after a backoff (or the wait its Retry-After asks for), and if
the server still refuses it is unavailable.

The client is shared by a run's concurrent queries; it counts what the run asked of Prometheus:
queries, series returned, bytes of answers, and the samples the server says it processed (asked
with `stats=all`, which Prometheus and Thanos answer; others leave it out and the count stays None).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
import requests

from shared.core.deadline import Deadline
from shared.core.retry import RetryPolicy, TryAgain, retry_after_seconds, with_retries
from shared.sources.prometheus_access import open_access, refusal_hint, tls_hint

if TYPE_CHECKING:
    from shared.core.settings import Settings

Sample = tuple[dict[str, str], float]
ContainerSample = tuple[tuple[str, str, str], float]  # (namespace, pod, container), value

# Answers that say the query is too big (a proxy's 413/414, Prometheus' 422 "too many samples"): split it.
TOO_LARGE_STATUSES = frozenset({413, 414, 422})
# Answers that say "not now": asked again, the same way.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
_HTML_TITLE = re.compile(r"<title>([^<]*)</title>", re.IGNORECASE)
RETRY_POLICY = RetryPolicy(max_attempts=2, backoff_seconds=1.0, max_backoff_seconds=1.0, max_retry_after_seconds=10.0)
"""One more try after a second or so (or a Retry-After up to 10 s): a restart or a burst passes, an outage does not."""


class PrometheusError(Exception):
    """A query failed; the message says why in words an operator can act on."""


class PrometheusUnavailable(PrometheusError):
    """The server cannot be reached or did not answer in time."""


class PrometheusRefused(PrometheusError):
    """Every query would get this answer (credentials, tenant, path, TLS): the message names the setting."""


class QueryTooLarge(PrometheusError):
    """The answer was too large or the server refused the query's size: split it."""


@dataclass
class PrometheusStats:
    """What one client asked of Prometheus: requests, seconds waiting, series and bytes it got back, and
    the samples the server reported it processed (None until one answer reports them)."""

    queries: int = 0
    seconds: float = 0.0
    series: int = 0
    response_bytes: int = 0
    samples: int | None = None


class PrometheusClient:
    """Instant queries against `PROMETHEUS_URL` (+ `PROMETHEUS_PATH_PREFIX`), each under the configured
    timeout, shortened to what is left of the deadline; safe to share between threads."""

    def __init__(self, settings: Settings, deadline: Deadline | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._timeout = settings.prometheus_timeout_seconds
        self._max_bytes = settings.prometheus_max_response_bytes
        self._deadline = deadline or Deadline(None)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._decoding = threading.Lock()  # one answer decoded at a time (query_by_container)
        self._access_error: str | None = None
        try:
            access = open_access(settings)
        except OSError as exc:  # the token file: told at the first request, as every query would be
            self._access_error = (f"cannot read PROMETHEUS_BEARER_TOKEN_FILE {settings.prometheus_bearer_token_file}: "
                                  f"{exc.strerror or exc}")
            access = open_access(settings.model_copy(update={"prometheus_bearer_token_file": None}))
        self._url, self._session, self._auth_kind = access.base_url, access.session, access.auth_kind
        self._verify = access.verify
        self.stats = PrometheusStats()

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_vector(self, promql: str, at: float) -> list[Sample]:
        """Evaluate `promql` at time `at`; a vector of (labels, value), every label of each series."""
        body = self._get_body("/api/v1/query", {"query": promql, "time": f"{at:.3f}", "stats": "all"})
        with self._decoding:
            return [(series.metric, float(series.value[1])) for series in self._series(body, promql, _VECTOR_DECODER)]

    def query_by_container(self, promql: str, at: float, labels: tuple[str, str, str],
                           into: Callable[[Iterator[ContainerSample]], None]) -> None:
        """Evaluate `promql` (grouped by namespace, pod and container) at `at`; feed `into` the
        ((ns, pod, container), value) of each series.

        Only the three `labels` are decoded, into small typed records: a 100k-pod cluster's answer is
        tens of MB of JSON, and a dict of labels per series would cost several times that again.
        Answers arrive in parallel but are decoded one at a time, and `into` takes the series as they
        are read, under the same lock: decoding holds the GIL, so parallel decodes would gain no time,
        only hold several decoded answers (each a few times its JSON) in memory at once.
        """
        body = self._get_body("/api/v1/query", {"query": promql, "time": f"{at:.3f}", "stats": "all"})
        with self._decoding:
            result = self._series(body, promql, _container_decoder(labels))
            del body
            into(((series.metric.namespace, series.metric.pod, series.metric.container), float(series.value[1]))
                 for series in result)

    def _series(self, body: bytes, promql: str, decoder: msgspec.json.Decoder) -> list[Any]:
        """The series of an instant query's answer (labels as `decoder` decodes them), counted in the run's
        stats; every value checked, so a malformed one fails the query before any of it is used."""
        try:
            answer = decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise PrometheusError(f"malformed vector in the answer to {promql}: {exc}") from None
        except msgspec.DecodeError:
            raise PrometheusError("Prometheus answered 200 with a body that is not JSON") from None
        if answer.status != "success" or answer.data is None:
            raise PrometheusError(f"Prometheus answered {answer.status}: {answer.error}")
        if answer.data.resultType != "vector":
            raise PrometheusError(f"expected a vector, got {answer.data.resultType!r} for {promql}")
        stats = answer.data.stats
        self._count(len(answer.data.result), stats.samples.totalQueryableSamples if stats and stats.samples else None)
        try:
            for series in answer.data.result:
                float(series.value[1])
        except ValueError:
            raise PrometheusError(f"malformed value in the answer to {promql}") from None
        result: list[Any] = answer.data.result
        return result

    def metric_names(self, match: Sequence[str] = (), since_seconds: float | None = None) -> set[str]:
        """The metric names of series matching any selector in `match` (all series when empty), seen in
        the last `since_seconds` when given: an index lookup, no sample is read."""
        params: dict[str, str | list[str]] = {"match[]": list(match)} if match else {}
        if since_seconds is not None:
            now = time.time()
            params.update(start=f"{now - since_seconds:.3f}", end=f"{now:.3f}")
        data = self._get_json("/api/v1/label/__name__/values", params)
        return set(data.get("data") or ())

    def build_info(self) -> dict:
        """The server's version and build details (the API's `data`); empty when it gives none."""
        return self._get_json("/api/v1/status/buildinfo", {}).get("data") or {}

    def _count(self, series: int, samples: int | None) -> None:
        with self._lock:
            self.stats.series += series
            if samples is not None:
                self.stats.samples = (self.stats.samples or 0) + samples

    def _get_json(self, path: str, params: dict[str, str | list[str]]) -> dict:
        """A successful answer's JSON (Prometheus' envelope with `status` and `data`)."""
        try:
            data = orjson.loads(self._get_body(path, params))
        except orjson.JSONDecodeError:
            raise PrometheusError("Prometheus answered with a body that is not JSON") from None
        if not isinstance(data, dict) or data.get("status") != "success":
            raise PrometheusError(f"Prometheus answered: {str(data.get('error') if isinstance(data, dict) else '')}")
        return data

    def _get_body(self, path: str, params: dict[str, str | list[str]]) -> bytes:
        """A successful answer's body; an answer that says "not now" is asked for once more before giving up."""
        tried = with_retries(lambda: self._answer(path, params), _worth_retrying, RETRY_POLICY, sleep=self._sleep,
                             deadline=self._deadline)
        answer = tried.result
        if isinstance(answer, NotNow):
            raise PrometheusUnavailable(f"Prometheus answered {answer.status} ({tried.attempts} "
                                        f"attempt{'s' if tried.attempts > 1 else ''}): {answer.error}")
        return answer

    def _answer(self, path: str, params: dict[str, str | list[str]]) -> bytes | NotNow:
        """One request: the body of a successful answer, NotNow, or the PrometheusError that says what failed."""
        if self._access_error:
            raise PrometheusRefused(self._access_error)
        timeout = self._deadline.timeout(self._timeout)
        started = time.perf_counter()
        with self._lock:
            self.stats.queries += 1
        try:
            # POST keeps long selectors out of the URL (414 URI too large); GET for the metadata calls.
            if "query" in params:
                response = self._session.post(self._url + path, data=params, timeout=timeout, stream=True,
                                              verify=self._verify)
            else:
                response = self._session.get(self._url + path, params=params, timeout=timeout, stream=True,
                                             verify=self._verify)
            body = _read_bounded(response, self._max_bytes)
        except requests.Timeout:
            self._deadline.check("waiting for Prometheus")
            raise PrometheusUnavailable(f"Prometheus at {self._url} did not answer within {timeout:.1f}s") from None
        except requests.exceptions.SSLError as exc:
            raise PrometheusRefused(f"Prometheus at {self._url}: {tls_hint(exc, self._settings)}") from None
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"Prometheus at {self._url} unreachable: {type(exc).__name__}") from None
        finally:
            with self._lock:
                self.stats.seconds += time.perf_counter() - started
        with self._lock:
            self.stats.response_bytes += len(body)
        return self._judge(response, body)

    def _judge(self, response: requests.Response, body: bytes) -> bytes | NotNow:
        """The body of a successful answer, NotNow, or the PrometheusError that says what went wrong."""
        status = response.status_code
        if status in TOO_LARGE_STATUSES:
            raise QueryTooLarge(f"Prometheus answered {status}: {_error_text(body)}")
        if status in UNAVAILABLE_STATUSES:
            return NotNow(status, _error_text(body), retry_after_seconds(response.headers.get("Retry-After")))
        hint = refusal_hint(status, _error_text(body), self._auth_kind) if status >= 400 else None
        if hint is not None:
            raise PrometheusRefused(f"Prometheus at {self._url} answered {status} ({_error_text(body) or 'no reason'}"
                                    f"): {hint}")
        if status >= 300:
            raise PrometheusError(f"Prometheus answered {status}: {_error_text(body)}")
        return body


class _Samples(msgspec.Struct):
    totalQueryableSamples: int | None = None


class _Stats(msgspec.Struct):
    samples: _Samples | None = None


class _Series(msgspec.Struct):
    metric: dict[str, str]
    value: tuple[float, str]  # [timestamp, "value"]: Prometheus writes numbers as strings (NaN, +Inf)


class _VectorData(msgspec.Struct):
    resultType: str
    result: list[_Series] = []
    stats: _Stats | None = None  # asked with stats=all; Prometheus and Thanos answer it, others leave it out


class _VectorAnswer(msgspec.Struct):
    status: str
    data: _VectorData | None = None
    error: str = ""


_VECTOR_DECODER = msgspec.json.Decoder(_VectorAnswer)


@functools.cache
def _container_decoder(labels: tuple[str, str, str]) -> msgspec.json.Decoder:
    """A decoder of vector answers keeping only the namespace, pod and container labels (their names as
    LABEL_NAMESPACE, LABEL_POD and LABEL_CONTAINER set them) of each series."""
    key = msgspec.defstruct("ContainerLabels", [("namespace", str, ""), ("pod", str, ""), ("container", str, "")],
                            rename=dict(zip(("namespace", "pod", "container"), labels)))
    series = msgspec.defstruct("ContainerSeries", [("metric", key), ("value", tuple[float, str])])
    data = msgspec.defstruct("ContainerVector", [("resultType", str), ("result", list[series], []),  # type: ignore[valid-type]
                                                 ("stats", _Stats | None, None)])
    answer = msgspec.defstruct("ContainerAnswer", [("status", str), ("data", data | None, None), ("error", str, "")])
    return msgspec.json.Decoder(answer)


@dataclass(frozen=True)
class NotNow:
    """An answer that asks to come back later: its status, error text and Retry-After."""

    status: int
    error: str
    retry_after_seconds: float | None


def _worth_retrying(answer: bytes | NotNow) -> TryAgain | None:
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
    """The API's `error`, an HTML error page's title (a proxy's), or the start of a plain-text body."""
    try:
        return str(orjson.loads(body).get("error") or "")[:300]
    except (ValueError, AttributeError):
        text = body[:2000].decode("utf-8", "replace").strip()
        title = _HTML_TITLE.search(text)
        return title.group(1).strip() if title else text[:300]
