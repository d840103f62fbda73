"""The monitor's own health: is its database usable, are its sources reachable, is collection recent.

Used by the health function (`/health`, `/health/readiness`), `k8s-monitor health` and `diagnose`.
Each dependency check runs in its own thread under its own timeout (HEALTH_CHECK_TIMEOUT_SECONDS),
so a dependency that accepts a connection and never answers costs that timeout, never a hung
probe. Only a database problem makes the monitor `unhealthy` (503): without its database nothing
works. A source that is down, a missing permission or a stale collection make it `degraded` (200):
the service runs, and the report says what to fix.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import __version__
from shared.core.database_url import PostgresTarget
from shared.core.formats import ago, iso_utc
from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.backup import last_backup
from shared.store.connection import SCHEMA_VERSION, StoreError, connect, open_store, schema_version, store_name
from shared.store.dialect import Connection
from shared.store.postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from shared.store.run_status import SUCCESSFUL_RUN, SUCCESSFUL_RUN_STATUSES, RunStatus
from shared.store.size import stored_bytes

SCHEMA_VERSION_POSTGRES = len(POSTGRES_MIGRATIONS)
HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "healthy", "degraded", "unhealthy", "unknown"
# Below this much free space SQLite cannot grow its WAL: the next collection fails to store.
MIN_FREE_BYTES = 1024 * 1024

_RUN_COLUMNS = "id, status, started_at, finished_at, pods, error, kubernetes_seconds, prometheus_seconds"


@dataclass(frozen=True)
class RunSummary:
    """The few columns of a `runs` row that health and metrics report."""

    id: int
    status: str
    started_at: float
    finished_at: float
    pods: int
    error: str | None
    kubernetes_seconds: float | None
    prometheus_seconds: float | None


@dataclass(frozen=True)
class MonitorState:
    """What the database says about the monitor's own work."""

    last_run: RunSummary | None  # the latest run that did not skip
    last_success: RunSummary | None  # the latest `ok` or `partial` run
    last_backup_at: float | None  # when the latest good backup finished


def read_monitor_state(conn: Connection) -> MonitorState:
    """The latest run, the latest successful run and the latest good backup."""
    last_run = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE status != '{RunStatus.SKIPPED}'"
        " ORDER BY started_at DESC, id DESC LIMIT 1"
    ).fetchone()
    last_success = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE {SUCCESSFUL_RUN} "
        "ORDER BY started_at DESC, id DESC LIMIT 1"
    ).fetchone()
    backup = last_backup(conn)
    return MonitorState(
        RunSummary(*last_run) if last_run else None,
        RunSummary(*last_success) if last_success else None,
        backup.finished_at if backup else None,
    )


def database_size_bytes(path: Path) -> int:
    """The database file plus its write-ahead log: what the data volume holds for it."""
    size = 0
    for part in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            size += part.stat().st_size
    return size


@dataclass
class ComponentCheck:
    """One component's verdict, how long the check took, and what to fix when it is not healthy."""

    status: str
    latency_seconds: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The check as the /health body shows it: status, latency in seconds (4 decimals), error, details."""
        body: dict[str, Any] = {"status": self.status}
        if self.latency_seconds is not None:
            body["latency_seconds"] = round(self.latency_seconds, 4)
        if self.error:
            body["error"] = self.error
        return {**body, **self.details}


@dataclass
class HealthReport:
    """Every component's check, and the figures an operator looks at first."""

    timestamp: float
    checks: dict[str, ComponentCheck]  # database, kubernetes, prometheus, collection
    state: MonitorState | None
    schema_version: int | None
    database_size_bytes: int | None
    version: str = __version__
    expected_schema_version: int = SCHEMA_VERSION  # the backend's: SQLite's or PostgreSQL's migrations

    @property
    def status(self) -> str:
        """`unhealthy` when the database fails, `degraded` when another component does, else `healthy`."""
        if self.checks["database"].status != HEALTHY:
            return UNHEALTHY
        return HEALTHY if all(check.status == HEALTHY for check in self.checks.values()) else DEGRADED

    @property
    def http_status(self) -> int:
        """503 when unhealthy so probes and load balancers react; degraded still answers 200."""
        return 503 if self.status == UNHEALTHY else 200

    def as_dict(self) -> dict[str, Any]:
        """The /health body: overall and per-component status, ages in seconds, versions and the checks."""
        success = self.state.last_success if self.state else None
        last_run = self.state.last_run if self.state else None
        backup_at = self.state.last_backup_at if self.state else None
        return {
            "status": self.status,
            "timestamp": iso_utc(self.timestamp),
            **{f"{name}_status": check.status for name, check in self.checks.items()},
            "version": self.version,
            "schema_version": self.schema_version,
            "expected_schema_version": self.expected_schema_version,
            "database_size_bytes": self.database_size_bytes,
            "last_successful_collection": iso_utc(success.finished_at) if success else None,
            "last_successful_collection_age_seconds": _age(success.finished_at, self.timestamp) if success else None,
            "last_run_status": last_run.status if last_run else None,
            "last_backup": iso_utc(backup_at) if backup_at else None,
            "last_backup_age_seconds": _age(backup_at, self.timestamp) if backup_at else None,
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def _age(then: float, now: float) -> float:
    return round(max(0.0, now - then), 1)


def check_health(settings: Settings, now: float | None = None,
                 timer: Callable[[], float] = time.perf_counter, cluster: str | None = None) -> HealthReport:
    """Check the database, Kubernetes and Prometheus concurrently, each under its own timeout.

    `now` (Unix seconds, default the current time) is when collection staleness is judged; `timer`
    (a monotonic clock in seconds) measures how long each check took.
    """
    now = time.time() if now is None else now
    timeout = settings.health_check_timeout_seconds
    _import_clients()
    found = run_concurrently(
        {
            "database": lambda: _check_database(settings, timer, cluster),
            "kubernetes": lambda: _check_kubernetes(settings, timeout, timer),
            "prometheus": lambda: _check_prometheus(settings, timeout, timer),
        },
        timeout,
    )

    def failed(what: str, status: str, outcome: BaseException | None) -> ComponentCheck:
        if outcome is None:
            return ComponentCheck(status, timeout,
                                  f"{what}: no answer within {timeout:g}s (HEALTH_CHECK_TIMEOUT_SECONDS)")
        return ComponentCheck(status, error=redact(f"{what}: {type(outcome).__name__}: {outcome}"))

    database = found["database"]
    if not isinstance(database, _DatabaseFindings):
        database = _DatabaseFindings(failed(f"database {store_name(settings)}", UNHEALTHY, database))
    kubernetes, prometheus = found["kubernetes"], found["prometheus"]
    checks = {
        "database": database.check,
        "kubernetes": kubernetes if isinstance(kubernetes, ComponentCheck) else failed(
            "Kubernetes API", DEGRADED, kubernetes),
        "prometheus": prometheus if isinstance(prometheus, ComponentCheck) else failed(
            f"Prometheus at {redact(settings.prometheus_url)}", DEGRADED, prometheus),
        "collection": _check_collection(database.state, settings, now),
    }
    expected = SCHEMA_VERSION_POSTGRES if isinstance(settings.database, PostgresTarget) else SCHEMA_VERSION
    return HealthReport(now, checks, database.state, database.schema_version, database.size_bytes,
                        expected_schema_version=expected)


def _import_clients() -> None:
    """Import what the checks use before their timeouts start, once per process.

    Importing the clients (requests, msgspec) takes a tenth of a second, more on a throttled CPU: a
    cold import is not a slow dependency, and must not make the first check after a scale from zero fail.
    """
    import shared.sources.access  # noqa: F401
    import shared.sources.kube  # noqa: F401
    import shared.sources.kube_credentials  # noqa: F401
    import shared.sources.metric_presence  # noqa: F401
    import shared.sources.prometheus  # noqa: F401


def run_concurrently(calls: dict[str, Callable[[], Any]], timeout_seconds: float) -> dict[str, Any]:
    """Run each call in its own daemon thread: its result, the exception it raised, or None.

    None means the call was not done within the timeout. A thread cannot be killed: one stuck in
    a socket read stays until its own client timeout, but nobody waits for it, and as a daemon it
    never holds up the process's exit. Each thread runs in a copy of the caller's context, so its
    log lines keep the function name and ids.
    """
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            value = call()
        except Exception as exc:  # noqa: BLE001 — handed to the caller, which words it
            value = exc
        with lock:
            results[name] = value

    threads = []
    for name, call in calls.items():
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(run, name, call), name=f"check-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    ends = time.monotonic() + timeout_seconds
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    with lock:
        return {name: results.get(name) for name in calls}


def check_readiness(settings: Settings) -> ComponentCheck:
    """Ready to serve: the database opens read-only and its schema is current. No network call but
    PostgreSQL's, under HEALTH_CHECK_TIMEOUT_SECONDS."""
    started = time.perf_counter()
    try:
        conn = open_store(settings, readonly=True, timeout_seconds=settings.health_check_timeout_seconds)
        try:
            conn.execute("SELECT id FROM runs LIMIT 1").fetchall()
        finally:
            conn.close()
    except StoreError as exc:
        return ComponentCheck(UNHEALTHY, time.perf_counter() - started, redact(str(exc)))
    except sqlite3.Error as exc:
        error = str(exc) if isinstance(settings.database, PostgresTarget) else _unreadable(settings.database_path, exc)
        return ComponentCheck(UNHEALTHY, time.perf_counter() - started, redact(error))
    version = SCHEMA_VERSION_POSTGRES if isinstance(settings.database, PostgresTarget) else SCHEMA_VERSION
    return ComponentCheck(HEALTHY, time.perf_counter() - started, details={"schema_version": version})


@dataclass
class _DatabaseFindings:
    check: ComponentCheck
    state: MonitorState | None = None
    schema_version: int | None = None
    size_bytes: int | None = None


def _check_database(settings: Settings, timer: Callable[[], float], cluster: str | None = None) -> _DatabaseFindings:
    if isinstance(settings.database, PostgresTarget):
        return _check_postgres(settings, settings.database, timer, cluster or settings.cluster_name)
    path = settings.database_path
    started = timer()
    exists = path.is_file()
    size = database_size_bytes(path) if exists else None
    problem, details = _writability(path) if exists else (None, {})
    details = {"path": str(path), **details}

    def unusable(error: str, version: int | None = None) -> _DatabaseFindings:
        error = f"{error}; {problem}" if problem else error
        check = ComponentCheck(UNHEALTHY, timer() - started, redact(error), details)
        return _DatabaseFindings(check, schema_version=version, size_bytes=size)

    try:
        conn = connect(path, readonly=True)
    except StoreError as exc:
        return unusable(str(exc))
    except sqlite3.Error as exc:  # not even a file SQLite can open (a directory, a broken mount)
        return unusable(f"database {path} cannot be opened: {exc}")
    version = None
    try:
        version = schema_version(conn)
        state = read_monitor_state(conn)
    except sqlite3.DatabaseError as exc:
        return unusable(_unreadable(path, exc), version)
    finally:
        conn.close()
    check = ComponentCheck(UNHEALTHY if problem else HEALTHY, timer() - started, problem, details)
    return _DatabaseFindings(check, state, version, size)


def _check_postgres(settings: Settings, target: PostgresTarget, timer: Callable[[], float],
                    cluster: str) -> _DatabaseFindings:
    """The cluster's schema on the server, under HEALTH_CHECK_TIMEOUT_SECONDS (connecting and each query):
    unhealthy while the server is down, healthy again by itself once it answers."""
    started = timer()
    details = {"url": target.shown, "cluster": cluster}
    try:
        conn = open_store(settings, readonly=True, cluster=cluster,
                          timeout_seconds=settings.health_check_timeout_seconds)
    except (StoreError, sqlite3.Error) as exc:
        return _DatabaseFindings(ComponentCheck(UNHEALTHY, timer() - started, redact(str(exc)), details))
    try:
        state, size = read_monitor_state(conn), stored_bytes(conn)
    except sqlite3.Error as exc:
        return _DatabaseFindings(ComponentCheck(UNHEALTHY, timer() - started, redact(str(exc)), details))
    finally:
        conn.close()
    return _DatabaseFindings(ComponentCheck(HEALTHY, timer() - started, None, details), state, SCHEMA_VERSION_POSTGRES,
                             size)


def _unreadable(path: Path, exc: sqlite3.Error) -> str:
    return (f"database {path} cannot be read ({exc}): it is damaged; restore the latest backup "
            f"(`k8s-monitor restore`) or move the file away to start a new history")


def _writability(path: Path) -> tuple[str | None, dict[str, Any]]:
    """Whether the database can be written here, which even a reader of a WAL database needs.

    SQLite reads a WAL database through its `-shm` index, which the first opener creates: when
    no writer holds the file open, a reader that cannot write the directory cannot read at all.
    """
    stats = os.statvfs(path.parent)
    free_bytes = stats.f_bavail * stats.f_frsize
    details = {"free_bytes": free_bytes}
    if stats.f_flag & os.ST_RDONLY:
        return (f"the volume holding {path} is mounted read-only here: collections cannot store runs, and "
                f"SQLite cannot read a WAL database it cannot create the -shm index for; mount it writable"), details
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return (f"database {path} (or its directory) is not writable by uid {os.getuid()}: collections "
                f"cannot store runs and readers cannot create the WAL index; make the volume writable for "
                f"the container's user (securityContext.fsGroup) or fix the file mode"), details
    if free_bytes < MIN_FREE_BYTES:
        return (f"the volume holding {path} has {free_bytes} bytes free: collections cannot store runs; "
                f"grow the volume or lower RETENTION_RAW_DAYS / RETENTION_HOURLY_DAYS"), details
    return None, details


def _check_kubernetes(settings: Settings, timeout_seconds: float, timer: Callable[[], float]) -> ComponentCheck:
    """The API server answers this service account, and RBAC lets it list pods.

    Asked with a SelfSubjectAccessReview (no pod data read, nothing for etcd to do); where
    creating reviews is itself refused, one `list pods?limit=1` asks the real question instead.
    The client is imported here so the health function starts without it.
    """
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.sources.access import ReviewsRefused, can_i, try_read
    from shared.sources.kube import PODS, KubeClient, KubeError
    from shared.sources.kube_credentials import KubeCredentialsError, load_credentials

    started = timer()
    quick = settings.model_copy(update={"kube_timeout_seconds": timeout_seconds, "kube_max_retries": 0})
    namespace = settings.namespaces_include[0] if settings.namespaces_include else None
    details: dict[str, Any] = {}
    try:
        credentials = load_credentials(quick)
        details["server"] = credentials.host
        with KubeClient(credentials, quick, Deadline(timeout_seconds)) as kube:
            try:
                access = can_i(kube, "list", PODS, namespace)
                details["asked_with"] = "selfsubjectaccessreview"
                missing = (f"missing RBAC permission: verb 'list' on resource 'pods' in API group \"\" "
                           f"{f'in namespace {namespace}' if namespace else 'in all namespaces'} ({access.reason})")
            except ReviewsRefused:
                access = try_read(kube, "list", PODS, namespace)
                details["asked_with"] = "list pods"
                missing = access.reason  # the client's words name the verb and resource
    except (KubeError, KubeCredentialsError, BudgetExceeded) as exc:
        return ComponentCheck(DEGRADED, timer() - started, redact(f"Kubernetes API: {exc}"), details)
    if not access.allowed:
        return ComponentCheck(DEGRADED, timer() - started, redact(
            f"Kubernetes API: {missing}; grant it to the monitor's service account (common/base/rbac.yaml)"), details)
    return ComponentCheck(HEALTHY, timer() - started, details=details)


def _check_prometheus(settings: Settings, timeout_seconds: float, timer: Callable[[], float]) -> ComponentCheck:
    """Prometheus answers, and has this setup's series of every metric the collector queries.

    Only a missing CPU usage or working-set metric makes it degraded: without the CFS or OOM-event
    metrics (optional) the check stays healthy and says in `notes` which figures stay empty.
    """
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.sources.metric_presence import metric_presence, scope_text
    from shared.sources.prometheus import PrometheusClient, PrometheusError

    started = timer()
    url = redact(settings.prometheus_url + settings.prometheus_path_prefix)
    scope = scope_text(settings)
    quick = settings.model_copy(update={"prometheus_timeout_seconds": timeout_seconds})
    try:
        with PrometheusClient(quick, Deadline(timeout_seconds)) as prometheus:
            presence = metric_presence(prometheus, settings)
    except (PrometheusError, BudgetExceeded) as exc:
        return ComponentCheck(DEGRADED, timer() - started, redact(str(exc)), {"url": url})
    required, optional = presence.missing_required, presence.missing_optional
    details: dict[str, Any] = {"url": url, "cluster": settings.cluster_name, "selector": scope or None,
                               "missing_metrics": sorted(required.values()),
                               "missing_optional_metrics": sorted(optional.values())}
    if optional:
        details["notes"] = [f"no series of the optional {', '.join(sorted(optional.values()))}"
                            f"{' in ' + scope if scope else ''}: {_optional_figures(optional)} stay empty; older "
                            f"kubelets and some relabelling setups drop them"]
    if required:
        where = f" matching {scope} (PROMETHEUS_CLUSTER_LABEL with CLUSTER_NAME, PROMETHEUS_SELECTOR)" if scope else ""
        error = (f"Prometheus at {url} has no series of {', '.join(sorted(required.values()))}{where} in the last "
                 f"hour: usage stays empty; check that cAdvisor/kubelet metrics are scraped"
                 f"{', that the matchers match them' if scope else ''}, or set "
                 f"{' and '.join(sorted(required))} to the names your setup uses")
        return ComponentCheck(DEGRADED, timer() - started, error, details)
    return ComponentCheck(HEALTHY, timer() - started, details=details)


def _optional_figures(missing: dict[str, str]) -> str:
    """What stays empty without these optional metrics, in words."""
    figures = {"CPU throttling" if "CPU" in variable else "OOM events" for variable in missing}
    return " and ".join(sorted(figures))


def _check_collection(state: MonitorState | None, settings: Settings, now: float) -> ComponentCheck:
    """Stale when no `ok`/`partial` run finished within ALERT_STALE_INTERVALS collection intervals."""
    stale_after = settings.alert_stale_intervals * settings.collect_interval_seconds
    details: dict[str, Any] = {"stale_after_seconds": stale_after}
    if state is None:
        return ComponentCheck(UNKNOWN, error="the database cannot be read", details=details)
    if state.last_run:
        details.update(last_run_id=state.last_run.id, last_run_at=iso_utc(state.last_run.finished_at))
        if state.last_run.error:
            details["last_run_error"] = redact(state.last_run.error)
    last_failure = (f"; last run {state.last_run.status}: {redact(state.last_run.error or 'no error recorded')}"
                    if state.last_run and state.last_run.status not in SUCCESSFUL_RUN_STATUSES else "")
    if state.last_success is None:
        return ComponentCheck(DEGRADED, error=f"no successful collection yet{last_failure}", details=details)
    age = now - state.last_success.finished_at
    if age > stale_after:
        return ComponentCheck(
            DEGRADED, details=details,
            error=(f"the last successful collection finished {ago(age)}, more than "
                   f"{settings.alert_stale_intervals} collection intervals ({stale_after}s){last_failure}"),
        )
    return ComponentCheck(HEALTHY, details=details)
