"""A time budget for one run, so every network call's timeout fits inside what is left of it.

Knative answers 504 at the Service's `timeoutSeconds` while the run goes on; a run that bounds
itself below that limit stops cleanly and records why, instead of being cut off mid-write.
"""

from __future__ import annotations

import time


class BudgetExceeded(Exception):
    """The run used up its time budget (`COLLECT_BUDGET_SECONDS`)."""


class Deadline:
    """Seconds left until a monotonic deadline; `None` means no budget."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self._ends = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left of the budget, which may be negative; infinity without a budget."""
        return float("inf") if self._ends is None else self._ends - time.monotonic()

    def check(self, doing: str = "") -> None:
        """Raise BudgetExceeded when the budget is spent."""
        if self.remaining() <= 0:
            suffix = f" while {doing}" if doing else ""
            raise BudgetExceeded(f"run exceeded its time budget of {self.seconds:g}s{suffix}")

    def timeout(self, default: float) -> float:
        """A request timeout: `default`, shortened to what is left of the budget."""
        self.check()
        return max(0.05, min(default, self.remaining()))
