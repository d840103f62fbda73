"""The one retry loop and Retry-After parser used by Kubernetes, Prometheus and notification calls."""

from __future__ import annotations

import random

import pytest

from shared.core.deadline import Deadline
from shared.core.retry import (
    RETRY_AFTER_CAP_SECONDS,
    GaveUp,
    RetryPolicy,
    Tried,
    TryAgain,
    retry_after_seconds,
    with_retries,
)

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(("header", "seconds"), [
    ("3", 3.0),
    (" 120 ", 120.0),
    ("0", 0.0),
    ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),  # IMF-fixdate
    ("Wednesday, 21-Oct-15 07:28:05 GMT", 5.0),  # RFC 850, obsolete but to be accepted
    ("Wed Oct 21 07:28:05 2015", 5.0),  # asctime, obsolete but to be accepted
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # a date in the past: no wait
    ("99999999999", RETRY_AFTER_CAP_SECONDS),
    ("soon", None),
    ("1.5", None),  # delta-seconds are whole numbers
    ("-3", None),
    ("", None),
    (None, None),
])
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


POLICY = RetryPolicy(max_attempts=4, backoff_seconds=1.0, max_backoff_seconds=5.0)


def _run(results: list[TryAgain | None], policy: RetryPolicy = POLICY,
         deadline: Deadline | None = None) -> tuple[Tried[int], list[float]]:
    """Attempt number n answers results[n-1] (None: final); returns what the loop did and its waits."""
    waits: list[float] = []
    calls = iter(range(1, len(results) + 1))
    tried = with_retries(lambda: next(calls), lambda n: results[n - 1], policy, sleep=waits.append,
                         rng=random.Random(3), deadline=deadline)
    return tried, waits


def test_a_final_answer_stops_at_once() -> None:
    assert _run([None]) == (Tried(1, 1), [])


def test_backoff_doubles_jittered_up_to_its_bound_then_the_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=1.0, max_backoff_seconds=3.0)
    tried, waits = _run([TryAgain()] * 5, policy)
    assert tried == Tried(5, 5, GaveUp.ATTEMPTS)
    assert len(waits) == 4
    for waited, ceiling in zip(waits, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert ceiling / 2 <= waited <= ceiling


def test_the_wait_a_server_asks_for_replaces_the_backoff() -> None:
    tried, waits = _run([TryAgain(4.0), TryAgain(0.0), None])
    assert tried == Tried(3, 3)
    assert waits == [4.0, 0.0]


def test_a_longer_wait_than_the_policy_accepts_ends_the_retries() -> None:
    assert _run([TryAgain(6.0), None]) == (Tried(1, 1, GaveUp.RETRY_AFTER, 6.0), [])
    patient = RetryPolicy(max_attempts=4, backoff_seconds=1.0, max_backoff_seconds=5.0, max_retry_after_seconds=60)
    assert _run([TryAgain(6.0), None], patient) == (Tried(2, 2), [6.0])


def test_no_wait_ends_past_the_deadline() -> None:
    tried, waits = _run([TryAgain(2.0), None], deadline=Deadline(1.0))
    assert (tried.result, tried.attempts, tried.gave_up, waits) == (1, 1, GaveUp.DEADLINE, [])
    assert tried.wait_seconds == 2.0
