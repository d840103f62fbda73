"""Trying a call again: one loop for Kubernetes, Prometheus and notifications, its wait injectable.

Each caller sorts its own answers (which are worth another try, what wait a server asked for); this
decides how long to wait and when to stop: after `max_attempts`, when a server asks for a longer wait
than the policy accepts, or when the wait would end past the caller's deadline. The sleep and the
jitter's random source are parameters, so a test records the waits instead of spending them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Generic, TypeVar

from shared.core.deadline import Deadline

T = TypeVar("T")

RETRY_AFTER_CAP_SECONDS = 86_400.0
"""The longest wait a `Retry-After` is read as: a server asking for more gets a day, which every policy refuses."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` (RFC 9110, section 10.2.3) as seconds to wait, from 0 to RETRY_AFTER_CAP_SECONDS.

    The header is either delta-seconds (digits only) or an HTTP date in any of its three forms
    (IMF-fixdate, RFC 850, asctime), read against `now` (default: the system clock). None when
    absent or unreadable: the caller then backs off on its own.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_SECONDS)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # the asctime form carries no zone: every HTTP date is in GMT
        moment = moment.replace(tzinfo=UTC)
    waited = moment.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, waited), RETRY_AFTER_CAP_SECONDS)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: at most `max_attempts` calls, with an exponential backoff between them.

    The backoff after attempt n is `backoff_seconds * 2**(n-1)`, at most `max_backoff_seconds`, half
    of it jittered. A server's `Retry-After` replaces the backoff when it is at most
    `max_retry_after_seconds` (default: `max_backoff_seconds`); a longer one ends the retries.
    """

    max_attempts: int
    backoff_seconds: float
    max_backoff_seconds: float
    max_retry_after_seconds: float | None = None

    @property
    def retry_after_limit_seconds(self) -> float:
        """The longest `Retry-After` this policy waits for."""
        return self.max_backoff_seconds if self.max_retry_after_seconds is None else self.max_retry_after_seconds

    def delay_seconds(self, attempt: int, rng: random.Random) -> float:
        """The backoff after failed attempt number `attempt` (from 1), half of it jittered."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class TryAgain:
    """An attempt's verdict that another may succeed, after the wait the server asked for (if it did)."""

    retry_after_seconds: float | None = None


class GaveUp(Enum):
    """Why the retries stopped while the last attempt still asked for another."""

    ATTEMPTS = "attempts"  # max_attempts were made
    RETRY_AFTER = "retry_after"  # the server asked for a longer wait than the policy accepts
    DEADLINE = "deadline"  # the wait would end past the caller's deadline


@dataclass(frozen=True)
class Tried(Generic[T]):
    """The last attempt's result, how many attempts were made, and why they stopped.

    `gave_up` is None when the last result was final (a success, or a failure no retry would cure);
    otherwise `wait_seconds` is the wait that was not taken.
    """

    result: T
    attempts: int
    gave_up: GaveUp | None = None
    wait_seconds: float | None = None


def with_retries(
    attempt: Callable[[], T],
    verdict: Callable[[T], TryAgain | None],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    deadline: Deadline | None = None,
    before_wait: Callable[[int, T, float], None] | None = None,
) -> Tried[T]:
    """Call `attempt` until `verdict` says its result is final, or the policy or `deadline` says stop.

    `before_wait(number, result, seconds)` is told of each retry before its wait (to log it).
    """
    rng = rng or random.Random()
    number = 0
    while True:
        number += 1
        result = attempt()
        again = verdict(result)
        if again is None:
            return Tried(result, number)
        asked = again.retry_after_seconds
        if asked is not None and asked > policy.retry_after_limit_seconds:
            return Tried(result, number, GaveUp.RETRY_AFTER, asked)
        if number >= policy.max_attempts:
            return Tried(result, number, GaveUp.ATTEMPTS)
        delay = asked if asked is not None else policy.delay_seconds(number, rng)
        if deadline is not None and delay >= deadline.remaining():
            return Tried(result, number, GaveUp.DEADLINE, delay)
        if before_wait is not None:
            before_wait(number, result, delay)
        sleep(delay)
