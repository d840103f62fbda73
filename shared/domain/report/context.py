"""What a report knows besides each container's usage: policies, HPAs, groups, when workloads were last
seen, prices, and the history behind each recommendation.

Read once per report, inside the report's snapshot, from the tables the collection fills beside the
samples (shared/store/workload_facts.py) and the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.core.settings import Settings
from shared.domain.costs import Prices
from shared.domain.policies import WorkloadPolicy, workload_policy
from shared.domain.rightsizing import RightsizingPolicy
from shared.store.covered_time import EVERY_NAMESPACE, CoveredTime
from shared.store.dialect import Connection
from shared.store.history_span import first_seen
from shared.store.run_status import SUCCESSFUL_RUN
from shared.store.window_usage import Window
from shared.store.workload_facts import (
    HpaWindow,
    WorkloadKey,
    WorkloadMetadata,
    hpa_listing_error,
    read_workload_metadata,
    window_hpas,
)


@dataclass
class ReportContext:
    """Everything a report applies to its containers' figures besides their usage."""

    window: Window
    covered: CoveredTime
    defaults: RightsizingPolicy  # the REPORT_* settings; a workload's annotations may change them
    prices: Prices
    savings_exclude: frozenset[str]  # REPORT_SAVINGS_EXCLUDE
    group_label: str | None  # REPORT_GROUP_BY_LABEL
    metadata: dict[WorkloadKey, WorkloadMetadata]
    hpas: dict[WorkloadKey, list[HpaWindow]]
    hpa_error: str | None  # why the newest run could not list HPAs
    newest_run_ts: dict[str, int]  # scope (runs.namespaces, '' for all) -> its newest successful run's sample time
    first_seen_ts: dict[int, int]  # container id -> time of its first sample in the window
    _policies: dict[WorkloadKey, WorkloadPolicy] = field(default_factory=dict, repr=False)
    _newest_run: dict[str, int | None] = field(default_factory=dict, repr=False)  # newest_run_for, kept

    @classmethod
    def read(cls, conn: Connection, window: Window, covered: CoveredTime, container_ids: list[int],
             settings: Settings) -> ReportContext:
        """The context of a report over `window` (in the caller's snapshot)."""
        newest = dict(conn.execute(
            "SELECT COALESCE(namespaces, ''), CAST(MAX(started_at) AS INTEGER) FROM runs"
            f" WHERE {SUCCESSFUL_RUN} AND started_at < ? GROUP BY 1", (window.end,)).fetchall())
        return cls(window, covered, RightsizingPolicy.from_settings(settings), Prices.from_settings(settings),
                   frozenset(settings.report_savings_exclude), settings.report_group_by_label,
                   read_workload_metadata(conn), window_hpas(conn, window.start, window.end),
                   hpa_listing_error(conn, window.start, window.end), newest,
                   first_seen(conn, window.start, window.end, container_ids))

    def policy(self, key: WorkloadKey) -> WorkloadPolicy:
        """The workload's policy: the defaults with its pods' annotations applied (read once per workload)."""
        found = self._policies.get(key)
        if found is None:
            metadata = self.metadata.get(key)
            found = self._policies[key] = workload_policy(metadata.annotations if metadata else {}, self.defaults)
        return found

    def group(self, key: WorkloadKey) -> str | None:
        """The workload's value of REPORT_GROUP_BY_LABEL, as collected under that same label; None: none."""
        metadata = self.metadata.get(key)
        if self.group_label is None or metadata is None or metadata.group_label != self.group_label:
            return None
        return metadata.group_value

    def is_sidecar(self, key: WorkloadKey, container: str) -> bool:
        """Whether the container is a native sidecar of the workload (declared under spec.initContainers)."""
        metadata = self.metadata.get(key)
        return metadata is not None and container in metadata.sidecars

    def newest_run_for(self, namespace: str) -> int | None:
        """The sample time of the newest successful run that collected `namespace`; None: no run did (asked
        for every container)."""
        if namespace not in self._newest_run:
            self._newest_run[namespace] = max((ts for scope, ts in self.newest_run_ts.items()
                                               if scope == EVERY_NAMESPACE or namespace in scope.split(",")),
                                              default=None)
        return self._newest_run[namespace]
