"""The database schema as an ordered list of forward-only migrations (index + 1 = user_version).

Identity tables (nodes, workloads, containers, pods) are written once and referenced by integer ids
from narrow fact rows (samples), so a 20,000-container run adds small rows of integers. Units are
in the column names. Released migrations are never edited: a change is a new entry at the end: SQL,
or a BatchedMigration when it moves many rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from shared.store.sample_migration import MOVED_SAMPLES, move_samples


@dataclass(frozen=True)
class BatchedMigration:
    """A migration that moves rows in batches, so no transaction holds the write lock long on a big database.

    `prepare` (SQL that may run again) creates the new tables; `step` moves one batch in a transaction
    of its own and says whether there was one: it goes on after the last batch committed, so a killed
    migration resumes. `finish` (SQL) runs in the transaction that sets the new version, after the
    steps have moved what was written meanwhile (by a release still running the previous schema).
    """

    prepare: str
    step: Callable[[sqlite3.Connection], bool]
    finish: str
    leftover: str | None = None  # a table `finish` renamed aside, dropped at once when empty (a new database)


MIGRATIONS: list[str | BatchedMigration] = [
    # 1: runs, identities, raw samples, rollups, alerts, notifications, backups, event dedupe
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        trigger TEXT NOT NULL,
        event_source TEXT,
        event_id TEXT,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed', 'skipped')),
        pods INTEGER NOT NULL DEFAULT 0,
        containers INTEGER NOT NULL DEFAULT 0,
        nodes INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        kubernetes_seconds REAL,
        prometheus_seconds REAL,
        database_seconds REAL,
        kubernetes_requests INTEGER,
        prometheus_queries INTEGER,
        window_seconds INTEGER,
        namespaces TEXT  -- the run's namespace scope, comma-separated; NULL: every namespace
    );
    CREATE INDEX runs_status_started ON runs (status, started_at);
    CREATE INDEX runs_started ON runs (started_at);

    CREATE TABLE nodes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE node_samples (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        node_id INTEGER NOT NULL REFERENCES nodes (id),
        cpu_capacity_millicores INTEGER,
        cpu_allocatable_millicores INTEGER,
        memory_capacity_bytes INTEGER,
        memory_allocatable_bytes INTEGER,
        PRIMARY KEY (run_id, node_id)
    ) WITHOUT ROWID;

    CREATE TABLE workloads (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (namespace, kind, name)
    );
    CREATE TABLE containers (
        id INTEGER PRIMARY KEY,
        workload_id INTEGER NOT NULL REFERENCES workloads (id),
        name TEXT NOT NULL,
        UNIQUE (workload_id, name)
    );
    CREATE TABLE pods (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        workload_id INTEGER NOT NULL REFERENCES workloads (id),
        name TEXT NOT NULL,
        node_id INTEGER REFERENCES nodes (id),
        qos_class TEXT,
        last_seen INTEGER NOT NULL
    );
    CREATE INDEX pods_last_seen ON pods (last_seen);

    CREATE TABLE samples (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        container_id INTEGER NOT NULL REFERENCES containers (id),
        pod_id INTEGER NOT NULL REFERENCES pods (id),
        ts INTEGER NOT NULL,
        phase TEXT NOT NULL,
        cpu_request_millicores INTEGER,
        cpu_limit_millicores INTEGER,
        memory_request_bytes INTEGER,
        memory_limit_bytes INTEGER,
        cpu_usage_avg_millicores INTEGER,
        cpu_usage_max_millicores INTEGER,
        memory_working_set_avg_bytes INTEGER,
        memory_working_set_max_bytes INTEGER,
        cpu_throttled_ratio REAL,
        restart_count INTEGER NOT NULL,
        last_termination_reason TEXT,
        oom_events INTEGER,
        PRIMARY KEY (run_id, pod_id, container_id)
    ) WITHOUT ROWID;
    CREATE INDEX samples_container_ts ON samples (container_id, ts);
    CREATE INDEX samples_ts ON samples (ts);

    -- One row per workload container per UTC hour, made by shared/store/retention.py from the raw samples
    -- of every pod of the workload, with the figures of a day row (below; the same query makes both):
    -- usage from Running samples only, avg = *_sum / *_samples, requests and limits of the hour's
    -- newest sample, *_requested_sum for idle. cpu_usage_p95 is exact for the hour; the histogram
    -- (shared/store/histograms.py) gives a p95 over any set of hours or days within 4.4 %.
    CREATE TABLE hourly_rollups (
        container_id INTEGER NOT NULL REFERENCES containers (id),
        hour INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        cpu_request_millicores INTEGER,
        cpu_limit_millicores INTEGER,
        memory_request_bytes INTEGER,
        memory_limit_bytes INTEGER,
        cpu_usage_samples INTEGER NOT NULL,
        cpu_usage_sum_millicores INTEGER NOT NULL,
        cpu_usage_max_millicores INTEGER,
        cpu_usage_p95_millicores INTEGER,
        cpu_requested_sum_millicores INTEGER NOT NULL,
        cpu_usage_histogram BLOB,
        memory_working_set_samples INTEGER NOT NULL,
        memory_working_set_sum_bytes INTEGER NOT NULL,
        memory_working_set_max_bytes INTEGER,
        memory_requested_sum_bytes INTEGER NOT NULL,
        cpu_throttled_ratio_max REAL,
        restart_count_max INTEGER,
        oom_events_sum INTEGER NOT NULL,
        oom_killed_samples INTEGER NOT NULL,
        PRIMARY KEY (container_id, hour)
    ) WITHOUT ROWID;
    CREATE INDEX hourly_rollups_hour ON hourly_rollups (hour);

    -- One row per workload container per UTC day, folded from the raw samples run by run by
    -- shared/store/daily_rollups.py (usage from Running samples only), so a report over weeks reads two
    -- rows per container. Requests and limits are those of the day's newest sample; *_requested_sum
    -- adds the request of every sample with usage (for idle). Every sum has a *_cumulative twin that
    -- adds all earlier days of the container too, so the sum over a run of days is
    -- last.cumulative - first.cumulative + first.own (a late run landing in an older day is added to
    -- the twins of every later day). Histograms: shared/store/histograms.py.
    CREATE TABLE daily_rollups (
        container_id INTEGER NOT NULL REFERENCES containers (id),
        day INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        cpu_request_millicores INTEGER,
        cpu_limit_millicores INTEGER,
        memory_request_bytes INTEGER,
        memory_limit_bytes INTEGER,
        cpu_usage_max_millicores INTEGER,
        memory_working_set_max_bytes INTEGER,
        cpu_throttled_ratio_max REAL,
        restart_count_max INTEGER,
        samples INTEGER NOT NULL,
        cpu_usage_samples INTEGER NOT NULL,
        cpu_usage_sum_millicores INTEGER NOT NULL,
        cpu_requested_sum_millicores INTEGER NOT NULL,
        memory_working_set_samples INTEGER NOT NULL,
        memory_working_set_sum_bytes INTEGER NOT NULL,
        memory_requested_sum_bytes INTEGER NOT NULL,
        oom_events_sum INTEGER NOT NULL,
        oom_killed_samples INTEGER NOT NULL,
        cpu_usage_histogram BLOB,
        samples_cumulative INTEGER NOT NULL,
        cpu_usage_samples_cumulative INTEGER NOT NULL,
        cpu_usage_sum_millicores_cumulative INTEGER NOT NULL,
        cpu_requested_sum_millicores_cumulative INTEGER NOT NULL,
        memory_working_set_samples_cumulative INTEGER NOT NULL,
        memory_working_set_sum_bytes_cumulative INTEGER NOT NULL,
        memory_requested_sum_bytes_cumulative INTEGER NOT NULL,
        oom_events_sum_cumulative INTEGER NOT NULL,
        oom_killed_samples_cumulative INTEGER NOT NULL,
        cpu_usage_histogram_cumulative BLOB,
        PRIMARY KEY (container_id, day)
    ) WITHOUT ROWID;
    CREATE INDEX daily_rollups_day ON daily_rollups (day);
    -- The raw samples with ts >= folded_from of the runs with id <= folded_run_id are in
    -- daily_rollups (one row, id 1).
    CREATE TABLE daily_rollup_progress (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        folded_from INTEGER NOT NULL,
        folded_run_id INTEGER NOT NULL
    );

    CREATE TABLE processed_events (
        function TEXT NOT NULL,
        source TEXT NOT NULL,
        event_id TEXT NOT NULL,
        received_at REAL NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (function, source, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX processed_events_received ON processed_events (received_at);

    CREATE TABLE alerts (
        fingerprint TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        severity TEXT NOT NULL,
        labels TEXT NOT NULL,
        summary TEXT NOT NULL,
        description TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
        starts_at REAL NOT NULL,
        ends_at REAL,
        last_seen_at REAL NOT NULL,
        last_notified_at REAL,
        resolved_notified_at REAL
    );
    CREATE INDEX alerts_state ON alerts (state, ends_at);

    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('slack', 'email', 'webhook')),
        severity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sent', 'retry', 'failed')),
        attempt INTEGER NOT NULL,
        alerts INTEGER NOT NULL,
        fingerprints TEXT NOT NULL,
        event_id TEXT,
        error TEXT
    );
    CREATE INDEX notifications_created ON notifications (created_at);
    CREATE INDEX notifications_event ON notifications (event_id);

    -- Monotonic counters behind the `*_total` metrics (shared/store/counters.py): bumped in the transaction
    -- of the row they count, never pruned, so retention never makes a counter go down.
    CREATE TABLE counters (
        name TEXT NOT NULL,
        labels TEXT NOT NULL,  -- JSON object, keys sorted
        value INTEGER NOT NULL,
        PRIMARY KEY (name, labels)
    ) WITHOUT ROWID;

    CREATE TABLE backups (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        file TEXT,
        size_bytes INTEGER,
        sha256 TEXT,
        error TEXT
    );
    CREATE INDEX backups_status_finished ON backups (status, finished_at);
    """,
    # 2: averages over time are over the seconds the runs covered. Rollups also sum each sample
    # weighted by its run's window (runs.window_seconds): *_pod_seconds is the pod time with usage,
    # *_millicore_seconds and *_byte_seconds are value x seconds (REAL: exact below 2^53, and over
    # years of a large workload a running total would overflow an INTEGER). The seconds that
    # successful runs covered are kept per hour and per day beside the rollups, for each scope of
    # namespaces the runs had, and go with them (shared/store/covered_time.py).
    """
    ALTER TABLE hourly_rollups ADD COLUMN cpu_usage_pod_seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hourly_rollups ADD COLUMN cpu_usage_millicore_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE hourly_rollups ADD COLUMN cpu_requested_millicore_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE hourly_rollups ADD COLUMN memory_working_set_pod_seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hourly_rollups ADD COLUMN memory_working_set_byte_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE hourly_rollups ADD COLUMN memory_requested_byte_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_usage_pod_seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_usage_millicore_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_requested_millicore_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_working_set_pod_seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_working_set_byte_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_requested_byte_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_usage_pod_seconds_cumulative INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_usage_millicore_seconds_cumulative REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN cpu_requested_millicore_seconds_cumulative REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_working_set_pod_seconds_cumulative INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_working_set_byte_seconds_cumulative REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily_rollups ADD COLUMN memory_requested_byte_seconds_cumulative REAL NOT NULL DEFAULT 0;

    CREATE TABLE hourly_coverage (
        hour INTEGER NOT NULL,
        namespaces TEXT NOT NULL,  -- the runs' scope as runs.namespaces has it; '' for every namespace
        covered_seconds INTEGER NOT NULL,
        PRIMARY KEY (hour, namespaces)
    ) WITHOUT ROWID;
    CREATE TABLE daily_coverage (
        day INTEGER NOT NULL,
        namespaces TEXT NOT NULL,
        covered_seconds INTEGER NOT NULL,
        PRIMARY KEY (day, namespaces)
    ) WITHOUT ROWID;

    -- The rollups stored so far: each sample weighs the average window of its hour's (day's)
    -- successful runs, exact unless COLLECT_INTERVAL_SECONDS changed within it. The time comes from
    -- the runs rows, kept as long as the hourly rollups, but not for the first hours of the oldest
    -- day row: until that day goes (within a day), its samples count over the time of its runs left.
    UPDATE hourly_rollups SET
        cpu_usage_pod_seconds = CAST(ROUND(cpu_usage_samples * w.seconds) AS INTEGER),
        cpu_usage_millicore_seconds = cpu_usage_sum_millicores * w.seconds,
        cpu_requested_millicore_seconds = cpu_requested_sum_millicores * w.seconds,
        memory_working_set_pod_seconds = CAST(ROUND(memory_working_set_samples * w.seconds) AS INTEGER),
        memory_working_set_byte_seconds = memory_working_set_sum_bytes * w.seconds,
        memory_requested_byte_seconds = memory_requested_sum_bytes * w.seconds
    FROM (SELECT CAST(started_at AS INTEGER) / 3600 * 3600 AS hour, AVG(window_seconds) AS seconds FROM runs
          WHERE status IN ('ok', 'partial') AND window_seconds IS NOT NULL GROUP BY 1) AS w
    WHERE w.hour = hourly_rollups.hour;
    UPDATE daily_rollups SET
        cpu_usage_pod_seconds = CAST(ROUND(cpu_usage_samples * w.seconds) AS INTEGER),
        cpu_usage_millicore_seconds = cpu_usage_sum_millicores * w.seconds,
        cpu_requested_millicore_seconds = cpu_requested_sum_millicores * w.seconds,
        memory_working_set_pod_seconds = CAST(ROUND(memory_working_set_samples * w.seconds) AS INTEGER),
        memory_working_set_byte_seconds = memory_working_set_sum_bytes * w.seconds,
        memory_requested_byte_seconds = memory_requested_sum_bytes * w.seconds
    FROM (SELECT CAST(started_at AS INTEGER) / 86400 * 86400 AS day, AVG(window_seconds) AS seconds FROM runs
          WHERE status IN ('ok', 'partial') AND window_seconds IS NOT NULL GROUP BY 1) AS w
    WHERE w.day = daily_rollups.day;
    UPDATE daily_rollups SET
        cpu_usage_pod_seconds_cumulative = t.cpu_usage_pod_seconds,
        cpu_usage_millicore_seconds_cumulative = t.cpu_usage_millicore_seconds,
        cpu_requested_millicore_seconds_cumulative = t.cpu_requested_millicore_seconds,
        memory_working_set_pod_seconds_cumulative = t.memory_working_set_pod_seconds,
        memory_working_set_byte_seconds_cumulative = t.memory_working_set_byte_seconds,
        memory_requested_byte_seconds_cumulative = t.memory_requested_byte_seconds
    FROM (SELECT container_id, day,
               SUM(cpu_usage_pod_seconds) OVER running AS cpu_usage_pod_seconds,
               SUM(cpu_usage_millicore_seconds) OVER running AS cpu_usage_millicore_seconds,
               SUM(cpu_requested_millicore_seconds) OVER running AS cpu_requested_millicore_seconds,
               SUM(memory_working_set_pod_seconds) OVER running AS memory_working_set_pod_seconds,
               SUM(memory_working_set_byte_seconds) OVER running AS memory_working_set_byte_seconds,
               SUM(memory_requested_byte_seconds) OVER running AS memory_requested_byte_seconds
          FROM daily_rollups WINDOW running AS (PARTITION BY container_id ORDER BY day)) AS t
    WHERE t.container_id = daily_rollups.container_id AND t.day = daily_rollups.day;
    INSERT INTO hourly_coverage (hour, namespaces, covered_seconds)
    SELECT CAST(started_at AS INTEGER) / 3600 * 3600, COALESCE(namespaces, ''), SUM(window_seconds) FROM runs
    WHERE status IN ('ok', 'partial') AND window_seconds IS NOT NULL
      AND started_at < (SELECT COALESCE(MAX(hour) + 3600, 0) FROM hourly_rollups)
    GROUP BY 1, 2;
    INSERT INTO daily_coverage (day, namespaces, covered_seconds)
    SELECT CAST(started_at AS INTEGER) / 86400 * 86400, COALESCE(namespaces, ''), SUM(window_seconds) FROM runs
    WHERE status IN ('ok', 'partial') AND window_seconds IS NOT NULL
      AND id <= (SELECT folded_run_id FROM daily_rollup_progress WHERE id = 1)
      AND started_at >= (SELECT folded_from FROM daily_rollup_progress WHERE id = 1)
    GROUP BY 1, 2;
    """,
    # 3: each run's cluster, its warnings (duplicated series), and what it asked of Prometheus
    """
    -- CLUSTER_NAME of the run (NULL before this migration)
    ALTER TABLE runs ADD COLUMN cluster TEXT;
    -- what the run noticed without failing (duplicated series), one per line
    ALTER TABLE runs ADD COLUMN warnings TEXT;
    ALTER TABLE runs ADD COLUMN prometheus_series_returned INTEGER;
    -- the answers' JSON, after decompression
    ALTER TABLE runs ADD COLUMN prometheus_response_bytes INTEGER;
    -- as the server reported it (stats=all), NULL where it does not
    ALTER TABLE runs ADD COLUMN prometheus_samples_processed INTEGER;
    """,
    # 4: a sample keeps what changes from run to run: usage, restarts and the last termination. What a
    # pod's container declares (requests, limits) and its pod's phase are kept once per span of runs
    # that saw them the same (shared/store/container_spans.py); a sample names its span, and its time
    # is its run's (runs.started_at: a sample's former `ts` was CAST(started_at AS INTEGER)). Time
    # ranges of samples are read through runs (runs_started), a container's samples through its spans,
    # so the two indexes on samples go. pods.last_seen and its index go too: every run rewrote every
    # pod row for it; retention deletes the pods no span names. The existing samples move run by run
    # (shared/store/sample_migration.py), then the tables swap: the old one, renamed samples_v2, is
    # deleted by retention in batches (shared/store/retention.py), not dropped under the write lock
    # (unless it is empty: a new database).
    BatchedMigration(
        prepare="""
        CREATE TABLE IF NOT EXISTS container_spans (
            id INTEGER PRIMARY KEY,
            pod_id INTEGER NOT NULL REFERENCES pods (id),
            container_id INTEGER NOT NULL REFERENCES containers (id),
            first_run_id INTEGER NOT NULL,  -- run ids, not references: a long-lived span outlives its first runs
            last_run_id INTEGER NOT NULL,
            phase TEXT NOT NULL,
            cpu_request_millicores INTEGER,
            cpu_limit_millicores INTEGER,
            memory_request_bytes INTEGER,
            memory_limit_bytes INTEGER
        );
        CREATE INDEX IF NOT EXISTS container_spans_pod ON container_spans (pod_id, container_id);
        CREATE INDEX IF NOT EXISTS container_spans_container ON container_spans (container_id, first_run_id);
        -- Deleting spans must not check this reference (no index on span_id): retention deletes only
        -- spans no sample names, with foreign keys off.
        CREATE TABLE IF NOT EXISTS span_samples (
            run_id INTEGER NOT NULL REFERENCES runs (id),
            span_id INTEGER NOT NULL REFERENCES container_spans (id),
            cpu_usage_avg_millicores INTEGER,
            cpu_usage_max_millicores INTEGER,
            memory_working_set_avg_bytes INTEGER,
            memory_working_set_max_bytes INTEGER,
            cpu_throttled_ratio REAL,
            restart_count INTEGER NOT NULL,
            last_termination_reason TEXT,
            oom_events INTEGER,
            PRIMARY KEY (run_id, span_id)
        ) WITHOUT ROWID;
        """,
        step=move_samples,
        finish=f"""
        ALTER TABLE samples RENAME TO {MOVED_SAMPLES};
        ALTER TABLE span_samples RENAME TO samples;
        DROP INDEX pods_last_seen;
        ALTER TABLE pods DROP COLUMN last_seen;
        """,
        leftover=MOVED_SAMPLES,
    ),
    # 5: what recommendations need besides usage (shared/store/workload_facts.py): each workload's policy
    # annotations and group label, and the HPAs each run saw
    """
    -- A workload's pods' k8s-monitor.io/ annotations and the value of the label reports group by, as the
    -- newest run that changed them saw; keyed by name (kept after the workload is gone, never reused).
    CREATE TABLE workload_metadata (
        namespace TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        annotations TEXT NOT NULL,  -- JSON object, '{}' for none
        group_label TEXT,  -- REPORT_GROUP_BY_LABEL when it was collected; NULL: unset
        group_value TEXT,  -- the pods' value of that label; NULL: they have none
        sidecars TEXT NOT NULL,  -- JSON list of its native sidecars (declared under spec.initContainers)
        run_id INTEGER NOT NULL,  -- the newest run that changed this row
        PRIMARY KEY (namespace, kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE hpas (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (namespace, name)
    );
    -- What an HPA declares (its target, bounds and metrics), once per distinct declaration: runs see the
    -- same one for weeks, so each run's row keeps only the replicas and names this.
    CREATE TABLE hpa_specs (
        id INTEGER PRIMARY KEY,
        hpa_id INTEGER NOT NULL REFERENCES hpas (id),
        target_kind TEXT NOT NULL,
        target_name TEXT NOT NULL,
        min_replicas INTEGER NOT NULL,
        max_replicas INTEGER NOT NULL,
        metrics TEXT NOT NULL,  -- JSON list of {type, resource, container, target_type, target_utilization_percent,
                                -- target_value}
        UNIQUE (hpa_id, target_kind, target_name, min_replicas, max_replicas, metrics)
    );
    -- Each HPA's replicas as each run saw them, under the declaration then in force; deleted with the raw
    -- samples (run ids, not references).
    CREATE TABLE hpa_samples (
        run_id INTEGER NOT NULL,
        hpa_id INTEGER NOT NULL REFERENCES hpas (id),
        spec_id INTEGER NOT NULL REFERENCES hpa_specs (id),
        current_replicas INTEGER,
        desired_replicas INTEGER,
        PRIMARY KEY (run_id, hpa_id)
    ) WITHOUT ROWID;
    -- Whether each run could list HPAs: error NULL, it could (and hpa_samples hold all it saw).
    CREATE TABLE hpa_listings (
        run_id INTEGER PRIMARY KEY,
        error TEXT
    );
    """,
    # 6: each whole-day window's report totals, stored by the collection for the fleet view
    """
    CREATE TABLE report_totals (
        window_start INTEGER PRIMARY KEY,  -- the window's first second, a UTC midnight
        shaped_by TEXT NOT NULL,  -- digest of the settings and version they were computed with
        totals TEXT NOT NULL,  -- JSON: the cluster's totals over the window
        computed_at REAL NOT NULL,
        compute_seconds REAL NOT NULL  -- how long computing them took: the next refresh waits for that much time
    );
    """,
]
