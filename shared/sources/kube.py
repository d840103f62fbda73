"""A small Kubernetes REST client: JSON pages decoded as they arrive, timeouts, retries, actionable errors.

Credentials come from kube_credentials.py (a kubeconfig or the pod's service account, loaded as
kubectl loads them); the official client is not used. Requests go through `requests`. A list is
read page by page, each page decoded into the typed Structs of kube_objects.py (only the fields
the monitor reads) and its raw bytes dropped before the next page is asked for, so at most one
page of JSON is alive at a time. Single objects (Leases, access reviews) come back as plain dicts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import requests
import urllib3

from shared.core.deadline import Deadline
from shared.core.retry import GaveUp, RetryPolicy, TryAgain, retry_after_seconds, with_retries
from shared.sources.kube_credentials import KubeCredentials, KubeCredentialsError
from shared.sources.kube_objects import Item, Status, list_decoder

if TYPE_CHECKING:
    from shared.core.settings import Settings

log = logging.getLogger(__name__)


BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest Retry-After waited for (API Priority and Fairness asks for a second or so); longer gives up."""

Decoded = TypeVar("Decoded")
_OBJECT: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])
_STATUS = msgspec.json.Decoder(Status)


class KubeError(Exception):
    """A Kubernetes API call failed; `retriable` says whether trying again later may help.

    `retry_after_seconds` is the wait a 429 or 503 asked for (its Retry-After), None when it asked none.
    """

    def __init__(self, message: str, status: int | None = None, reason: str = "", retriable: bool = False,
                 retry_after_seconds: float | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retriable = retriable
        self.retry_after_seconds = retry_after_seconds


class KubeForbidden(KubeError):
    """401/403: the message names the RBAC verb and resource that are missing."""


class KubeGone(KubeError):
    """410 Gone: a list's continue token expired; the list must start again."""


class KubeConflict(KubeError):
    """409: the object changed (stale resourceVersion) or already exists."""


class KubeNotFound(KubeError):
    """404: the object does not exist."""


@dataclass(frozen=True, slots=True)
class Resource:
    """An API resource: where it lives and how RBAC names it."""

    group: str  # "" for the core group
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The API path of the collection, or of object `name` in it, namespaced when `namespace` is given."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes")
NAMESPACES = Resource("", "v1", "namespaces")
REPLICASETS = Resource("apps", "v1", "replicasets")
JOBS = Resource("batch", "v1", "jobs")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SELF_SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews")


@dataclass
class KubeStats:
    """What one client did: requests sent and seconds spent waiting on the API server."""

    requests: int = 0
    seconds: float = 0.0


class KubeClient:
    """JSON over HTTP to the API server with a timeout on every request and bounded retries."""

    def __init__(
        self, credentials: KubeCredentials, settings: Settings, deadline: Deadline | None = None,
        sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
    ):
        self._credentials = credentials
        self._timeout = settings.kube_timeout_seconds
        self._retry_policy = RetryPolicy(settings.kube_max_retries + 1, BACKOFF_SECONDS, MAX_BACKOFF_SECONDS,
                                         MAX_RETRY_AFTER_SECONDS)
        self._deadline = deadline or Deadline(None)
        self._sleep, self._rng = sleep, rng
        self._session = requests.Session()
        if credentials.tls_server_name:
            self._session.mount("https://", _TlsServerName(credentials.tls_server_name))
        # given per request, where REQUESTS_CA_BUNDLE and the proxy variables do not override them as they do a
        # session's verify and proxies
        self._proxies = {"http": credentials.proxy, "https": credentials.proxy} if credentials.proxy else None
        self._session.headers["Accept"] = "application/json"
        self._session.headers["User-Agent"] = "k8s-resource-monitor"
        self.stats = KubeStats()

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, resource: Resource, namespace: str | None = None, name: str | None = None) -> dict:
        """One object when `name` is given, else the whole list in one answer (`list_pages` pages it); retried."""
        return self.request("GET", resource, namespace, name, verb="get" if name else "list")

    def request(
        self,
        method: str,
        resource: Resource,
        namespace: str | None = None,
        name: str | None = None,
        *,
        verb: str,
        params: dict[str, str | int] | None = None,
        body: dict | None = None,
    ) -> dict:
        """One API call answered by a JSON object, with retries on 429 (honouring Retry-After), 5xx and
        broken connections."""
        return self._call(method, resource, namespace, name, verb, params, body, _OBJECT)

    def list_pages(
        self, resource: Resource, item_type: type[Item], namespace: str | None = None, page_size: int = 500,
    ) -> Iterator[list[Item] | None]:
        """Yield the items of a list page by page, decoded as `item_type`; on 410 Gone start the list again.

        Each page's bytes are decoded and dropped before the page is yielded, so the next request
        never finds the previous page's JSON alive. A restart yields None first: the caller drops
        what it kept of the abandoned list.
        """
        decoder = list_decoder(item_type)
        restarts = 0
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": page_size}
            if token:
                params["continue"] = token
            try:
                page = self._call("GET", resource, namespace, None, "list", params, None, decoder)
            except KubeGone:
                restarts += 1
                if restarts > 3:
                    raise
                log.warning("continue token for %s expired (410 Gone); restarting the list", resource.plural)
                token = None
                yield None
                continue
            token = page.metadata.continue_ if page.metadata else None
            items = page.items or []
            del page  # only the items are kept while the caller works on them
            yield items
            if not token:
                return

    def _call(
        self, method: str, resource: Resource, namespace: str | None, name: str | None, verb: str,
        params: dict[str, str | int] | None, body: dict | None, decoder: msgspec.json.Decoder[Decoded],
    ) -> Decoded:
        url = self._credentials.host + resource.path(namespace, name)
        scope = f" in namespace {namespace}" if namespace else ""
        what = f"{verb} {resource.plural}{scope}"

        def attempt() -> Decoded | KubeError:
            try:
                return self._send(method, url, resource, verb, params, body, decoder)
            except KubeError as exc:
                return exc

        def log_retry(number: int, error: Decoded | KubeError, seconds: float) -> None:
            log.warning("retrying %s in %.1fs: %s", what, seconds, error)

        tried = with_retries(attempt, _worth_retrying, self._retry_policy, sleep=self._sleep, rng=self._rng,
                             deadline=self._deadline, before_wait=log_retry)
        if not isinstance(tried.result, KubeError):
            return tried.result
        error = tried.result
        if tried.gave_up is GaveUp.ATTEMPTS:
            error.args = (f"{what} failed after {tried.attempts} attempts: {error}",)
        elif tried.gave_up is GaveUp.RETRY_AFTER:
            error.args = (f"{what} failed: the API server asked to retry after {tried.wait_seconds:g}s, longer than "
                          f"{self._retry_policy.retry_after_limit_seconds:g}s: {error}",)
        raise error

    def _send(self, method: str, url: str, resource: Resource, verb: str, params: dict[str, str | int] | None,
              body: dict | None, decoder: msgspec.json.Decoder[Decoded]) -> Decoded:
        headers = {}
        try:
            authorization = self._credentials.authorization()
        except KubeCredentialsError as exc:  # an expired exec credential that could not be renewed
            raise KubeError(str(exc)) from None
        if authorization:
            headers["Authorization"] = authorization
        timeout = self._deadline.timeout(self._timeout)
        started = time.perf_counter()
        self.stats.requests += 1
        try:
            with self._session.request(method, url, params=params, json=body, headers=headers, timeout=timeout,
                                       stream=True, proxies=self._proxies, verify=self._credentials.verify,
                                       cert=self._credentials.cert) as response:
                content = _read_body(response)
        except requests.RequestException as exc:
            if not _timed_out(exc):
                raise KubeError(f"Kubernetes API at {self._credentials.host} unreachable: {_short(exc)}",
                                retriable=True) from None
            self._deadline.check(f"waiting for the Kubernetes API ({verb} {resource.plural})")
            raise KubeError(f"Kubernetes API at {self._credentials.host} did not answer within {timeout:.1f}s",
                            retriable=True) from None
        finally:
            self.stats.seconds += time.perf_counter() - started
        if response.status_code >= 300:
            raise _api_error(response, content, verb, resource)
        try:
            return decoder.decode(content)
        except msgspec.ValidationError as exc:  # JSON of the wrong shape: asking again gets the same answer
            raise KubeError(f"Kubernetes API answered {verb} {resource.plural} with an unexpected object: {exc}",
                            response.status_code) from None
        except msgspec.DecodeError as exc:  # cut short or mangled on the way: worth asking again
            raise KubeError(f"Kubernetes API answered {verb} {resource.plural} with invalid JSON: {exc}",
                            response.status_code, retriable=True) from None


class _TlsServerName(requests.adapters.HTTPAdapter):
    """Checks the server's certificate for the kubeconfig's tls-server-name, sent as SNI, not for the URL's host."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None,
    ) -> tuple[Any, Any]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        return host_params, {**pool_kwargs, "server_hostname": self._server_name}


def _read_body(response: requests.Response) -> bytes:
    """The whole body, read at once where the server sent its length (requests would read 10 KB at a time)."""
    return b"".join(response.iter_content(chunk_size=None))


def _timed_out(exc: requests.RequestException) -> bool:
    """A timeout before the headers (requests' Timeout) or while reading the body (wrapped urllib3 timeout)."""
    return isinstance(exc, requests.Timeout) or any(isinstance(arg, urllib3.exceptions.TimeoutError)
                                                     for arg in exc.args)


def _api_error(response: requests.Response, content: bytes, verb: str, resource: Resource) -> KubeError:
    """A Status body (or whatever came back) turned into an error naming what to do."""
    status = response.status_code
    try:
        body = _STATUS.decode(content)
        message, reason = body.message, body.reason
    except msgspec.DecodeError:  # not a Status: a proxy's page, say
        message, reason = content[:200].decode("utf-8", "replace").strip(), ""
    group = resource.group or '""'
    if status in (401, 403):
        hint = (
            f"missing RBAC permission: verb '{verb}' on resource '{resource.plural}' in API group {group}"
            if status == 403 else "credentials rejected (401 Unauthorized): check the token or kubeconfig"
        )
        return KubeForbidden(f"{hint} ({message or reason})", status, reason or "Forbidden")
    if status == 410:
        return KubeGone(message or "continue token expired", status, reason)
    if status == 409:
        return KubeConflict(message or "conflict", status, reason)
    if status == 404:
        return KubeNotFound(message or "not found", status, reason)
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) if status in (429, 503) else None
    return KubeError(f"Kubernetes API answered {status} to {verb} {resource.plural}: {message or reason}",
                     status, reason, retriable=status == 429 or status >= 500, retry_after_seconds=retry_after)


def _worth_retrying(result: object) -> TryAgain | None:
    """A retriable error asks for another try, after its Retry-After if it gave one."""
    if isinstance(result, KubeError) and result.retriable:
        return TryAgain(result.retry_after_seconds)
    return None


def _short(exc: Exception) -> str:
    """The last line of a requests/urllib3 error, without the nested repr noise."""
    text = str(exc)
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if len(text) > 160 else text
