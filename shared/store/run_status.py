"""What became of a collection run: the one home of the statuses stored in `runs.status`.

A run is `ok` when every source answered, `partial` when it stored what it could (some query or
list failed: its samples lack those figures), `failed` when it stored no samples, `skipped` when
another collector held the lock or the Lease (recorded, so health and diagnose can say so). Reports, alerts,
rollups and health count `ok` and `partial` runs alike: both stored samples.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    SKIPPED = "skipped"


# The runs that stored samples.
SUCCESSFUL_RUN_STATUSES = (RunStatus.OK, RunStatus.PARTIAL)
# The same as an SQL condition on `runs.status` (the values are fixed words, never input); `r.{SUCCESSFUL_RUN}`
# on a join where runs is `r`.
SUCCESSFUL_RUN = f"status IN ({', '.join(repr(str(status)) for status in SUCCESSFUL_RUN_STATUSES)})"
