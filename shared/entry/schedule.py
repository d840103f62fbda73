"""An in-process schedule for `k8s-monitor serve`: what PingSources do on Knative, without Knative.

Collections run every `COLLECT_INTERVAL_SECONDS` and a backup once a day at the configured hour
(UTC), each through the same entry points the functions use, so dedupe, locking and alerting work
the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.core.settings import Settings
from shared.domain.trigger import Trigger

log = logging.getLogger(__name__)


def next_daily(now: float, hour: int) -> float:
    """The next time (Unix seconds) the UTC clock shows `hour`:00 after `now`."""
    current = datetime.fromtimestamp(now, UTC)
    target = current.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target.timestamp() <= now:
        target += timedelta(days=1)
    return target.timestamp()


class Scheduler:
    """Runs collections and the daily backup in a background thread until `stop()`."""

    def __init__(self, settings: Settings, backup_hour_utc: int = 2, clock: Callable[[], float] = time.time):
        self._settings = settings
        self._backup_hour = backup_hour_utc
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> None:
        """Start the background thread; collections start at once, the backup at the next backup hour."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it, so a run in progress finishes first."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        from shared.entry.backup import backup_once
        from shared.entry.collect import collect_once

        next_collect = self._clock()
        next_backup = next_daily(self._clock(), self._backup_hour)
        while not self._stop.is_set():
            now = self._clock()
            if now >= next_collect:
                self._run("collection", lambda: collect_once(self._settings, Trigger("schedule")))
                next_collect = now + self._settings.collect_interval_seconds
            if now >= next_backup:
                self._run("backup", lambda: backup_once(self._settings, Trigger("schedule")))
                next_backup = next_daily(now, self._backup_hour)
            self._stop.wait(max(0.5, min(next_collect, next_backup) - self._clock()))

    @staticmethod
    def _run(what: str, job: Callable[[], tuple[dict, int]]) -> None:
        try:
            body, _ = job()
            log.info("scheduled %s: %s", what, body.get("status"))
        except Exception:  # a scheduled job's failure must not end the schedule
            log.exception("scheduled %s failed", what)
