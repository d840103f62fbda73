"""Getting one message through: HTTP posting with outcomes sorted, and bounded retries.

Every attempt ends `sent`, `retry` (worth another try: a timeout, a 5xx, a 429) or `failed`
(another try would fail the same way: 400/403/404/410, a refused login). Retries back off
exponentially with jitter, wait what a 429's `Retry-After` asks, and stop after NOTIFY_MAX_ATTEMPTS,
or before a wait that would end past the caller's deadline (a collection's time budget).
Error texts never contain the target URL: a Slack webhook URL is a secret, and HTTP client errors
quote its path.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from shared.core import retry
from shared.core.deadline import Deadline
from shared.core.logs import redact
from shared.core.retry import RetryPolicy, retry_after_seconds
from shared.core.settings import Settings

log = logging.getLogger(__name__)

RETRIED_CLIENT_STATUSES = frozenset({408, 425, 429})  # the 4xx answers that mean "try later"
_BODY_CHARS = 200


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended; `error` says why it did not succeed (or a warning when sent).

    `transient` marks a final failure that came from giving up on retries: a later delivery of the
    same message may still succeed, unlike a permanent one.
    """

    status: str  # sent | retry | failed
    error: str | None = None
    retry_after_seconds: float | None = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        """Whether the message was delivered."""
        return self.status == "sent"


def retry_policy(settings: Settings) -> RetryPolicy:
    """The policy NOTIFY_MAX_ATTEMPTS, NOTIFY_BACKOFF_SECONDS and NOTIFY_MAX_BACKOFF_SECONDS describe.

    A `Retry-After` longer than NOTIFY_MAX_BACKOFF_SECONDS gives up at once: waiting it would hold the run.
    """
    return RetryPolicy(settings.notify_max_attempts, settings.notify_backoff_seconds,
                       settings.notify_max_backoff_seconds)


def with_retries(
    send: Callable[[], Attempt],
    policy: RetryPolicy,
    record: Callable[[int, Attempt], None],
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    deadline: Deadline | None = None,
) -> Attempt:
    """Call `send` until it succeeds, fails for good, or the attempts run out; `record` each attempt.

    The recorded status of the last attempt is final: a `retry` with no attempts left is recorded
    (and returned) as `failed`, with how many attempts were made. With a `deadline`, no wait ends
    past it (the retry is given up instead) and nothing is tried once it has passed; both are
    transient failures, as the next run may get through.
    """
    if deadline is not None and deadline.remaining() <= 0:
        return Attempt("failed", f"not tried: the time budget of {deadline.seconds:g}s is used up", transient=True)
    tried = retry.with_retries(lambda: _attempt(send), _worth_retrying, policy, sleep=sleep, rng=rng,
                               deadline=deadline, before_wait=lambda number, attempt, _: record(number, attempt))
    final = _final(tried, policy, deadline)
    record(tried.attempts, final)
    return final


def _attempt(send: Callable[[], Attempt]) -> Attempt:
    """One call of `send`; a channel that crashes fails this attempt, not the caller."""
    try:
        return send()
    except Exception as exc:  # a bug in a channel must not stop the others
        log.exception("notification channel crashed")
        return Attempt("failed", redact(f"unexpected error: {type(exc).__name__}: {exc}"))


def _worth_retrying(attempt: Attempt) -> retry.TryAgain | None:
    return retry.TryAgain(attempt.retry_after_seconds) if attempt.status == "retry" else None


def _final(tried: retry.Tried[Attempt], policy: RetryPolicy, deadline: Deadline | None) -> Attempt:
    """The last attempt, a `retry` turned into a transient `failed` that says why the retries stopped."""
    last = tried.result
    if tried.gave_up is retry.GaveUp.RETRY_AFTER:
        return Attempt("failed", f"{last.error}; asked to retry after {tried.wait_seconds:g}s, longer than "
                                 f"NOTIFY_MAX_BACKOFF_SECONDS ({policy.max_backoff_seconds:g}s)", transient=True)
    if tried.gave_up is retry.GaveUp.ATTEMPTS:
        return Attempt("failed", f"{last.error} (gave up after {tried.attempts} attempts)", transient=True)
    if tried.gave_up is retry.GaveUp.DEADLINE:
        budget = deadline.seconds if deadline is not None else None
        return Attempt("failed", f"{last.error} (gave up after attempt {tried.attempts}: the time budget "
                                 f"of {budget:g}s ends before the next)", transient=True)
    return last


def request_timeout(default_seconds: float, deadline: Deadline | None) -> float:
    """A request's timeout: `default_seconds` (NOTIFY_TIMEOUT_SECONDS), shortened to what is left of `deadline`."""
    if deadline is None:
        return default_seconds
    return max(0.05, min(default_seconds, deadline.remaining()))


def post(
    url: str, timeout_seconds: float, *, payload: dict | None = None, body: bytes | None = None,
    headers: dict[str, str] | None = None, expect_body: str | None = None,
) -> Attempt:
    """POST `payload` as JSON (or raw `body` with `headers`) and sort the answer.

    `expect_body` is what success must say besides a 2xx: Slack answers `ok`.
    """
    try:
        response = requests.post(url, json=payload, data=body, headers=headers, timeout=timeout_seconds,
                                 allow_redirects=False)
    except requests.Timeout:
        return Attempt("retry", f"no answer within {timeout_seconds:g}s")
    except requests.RequestException as exc:
        return Attempt("retry", f"{type(exc).__name__}: {scrub(str(exc), url)}")
    answer = response.text.strip()
    shown = scrub(answer[:_BODY_CHARS], url)
    if 200 <= response.status_code < 300:
        if expect_body is not None and answer != expect_body:
            return Attempt("failed", f"answered {response.status_code} with {shown!r} instead of {expect_body!r}")
        return Attempt("sent")
    error = f"answered {response.status_code}" + (f" {shown!r}" if shown else "")
    if response.status_code == 429:
        return Attempt("retry", error, retry_after_seconds(response.headers.get("Retry-After")))
    if 400 <= response.status_code < 500 and response.status_code not in RETRIED_CLIENT_STATUSES:
        return Attempt("failed", error)  # 400 invalid_payload, 403, 404 no_service, 410 channel archived
    return Attempt("retry", error)


def scrub(text: str, url: str) -> str:
    """`text` without the URL or its path and query (the secret part of a webhook URL)."""
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for secret in (url, tail, parts.path, parts.query):
        if len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return redact(text)
