"""Faults a test can inject into the simulated servers: errors, delays, resets and hangs.

Real clusters answer 429 under load, drop connections mid-body and sometimes never answer; the
collector must survive each. A fault applies to the next `times` requests whose path starts with
its prefix, then disappears.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(slots=True)
class Fault:
    """What to do instead of (or before) answering normally.

    status 200 with no body answers normally (after `delay_seconds`, or truncated when `reset`);
    another status answers with that error; `body` replaces the answer's body verbatim (malformed
    JSON, an HTML error page); `reset` sends the headers and half the body, then closes the socket;
    `hang` never answers until the server stops.
    """

    path_prefix: str
    status: int
    times: int = 1
    retry_after: float | None = None
    body: bytes | None = None
    delay_seconds: float = 0.0
    reset: bool = False
    hang: bool = False


class FaultPlan:
    """The pending faults of one server, safe to use from handler threads."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError(f"times must be at least 1, got {fault.times}")
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str) -> Fault | None:
        """The first fault matching `path`, counting this request against it."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
