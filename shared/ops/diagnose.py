"""`diagnose`: every fact needed to tell why the monitor misbehaves, checked at once and packed in one archive.

An operator who opens an issue (or helps a colleague) needs the same things every time: version and
settings, the health report, the last runs with their errors and timings, the database's state,
whether Prometheus has the metrics the collector queries, and whether RBAC lets the collector do
each of its API calls. Each check runs in its own thread under one timeout and says what to do
when something is wrong. A part that is down (no cluster, no Prometheus, no database) is reported
as such: the diagnosis of a broken monitor must not break with it.

Secrets never reach the archive: SecretStr settings (and so the contents of their `*_FILE`s) are
masked, URL credentials too, and every file is passed through the log redactor before it is written.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sqlite3
import tarfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared import __version__
from shared.core.logs import MASK, redact, register_secrets
from shared.core.settings import Settings
from shared.core.timeutil import ago, iso_utc
from shared.ops.health import check_health, database_size_bytes, run_concurrently
from shared.store.connection import SCHEMA_VERSION, StoreError, connect

if TYPE_CHECKING:
    from shared.sources.kube import KubeClient, Resource

OK, PROBLEM, UNAVAILABLE = "ok", "problem", "unavailable"
SECTIONS = ("health", "runs", "database", "prometheus", "permissions", "memory")
ARCHIVE_PREFIX = "k8s-monitor-diagnose-"
TIME_FORMAT = "%Y%m%d_%H%M%S"
# Objects of knative/rbac.yaml that a missing permission is added to.
CLUSTER_ROLE = "k8s-resource-monitor-reader"
LEASE_ROLE = "k8s-resource-monitor-lease"
# A container whose peak working set comes this close to its limit is one busy run away from OOMKilled.
MEMORY_NEAR_LIMIT_RATIO = 0.9
# The Services of knative/: each revision runs as the Deployment `<service>-<revision suffix>-deployment`.
MONITOR_SERVICES = ("collect", "health", "backup", "alert-notify", "report")
MEMORY_FIX = ("raise resources.limits.memory of the Service in knative/service-<name>.yaml, or make a collection "
              "hold less: a smaller KUBE_PAGE_SIZE (now {page_size} pods per page) or fewer namespaces "
              "(NAMESPACES_INCLUDE)")
_SECONDS_GRACE = 1.0  # the outer timeout lets a check's own timeouts fire first, with their own words


@dataclass(frozen=True)
class Finding:
    """One thing checked: its verdict, what was seen, and what to do when it is not ok."""

    subject: str
    status: str
    detail: str = ""
    fix: str | None = None


@dataclass
class Section:
    """One check's verdict, a one-line summary, its findings and the raw facts for the archive."""

    status: str
    summary: str
    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The section as the archive's JSON holds it: status, summary, findings, then its data."""
        return {"status": self.status, "summary": self.summary,
                "findings": [asdict(finding) for finding in self.findings], **self.data}


@dataclass
class Diagnosis:
    """Every section's verdict at `taken_at` (Unix seconds), and the settings it ran with."""

    taken_at: float
    settings: dict[str, Any]
    sections: dict[str, Section]
    version: str = __version__

    @property
    def problems(self) -> list[str]:
        """The names of the sections that are not ok; the command exits 1 when there is any."""
        return [name for name, section in self.sections.items() if section.status != OK]

    def verdict(self) -> str:
        """What the command prints: a line per check, then each finding that needs attention.

        The health section's findings are left to its summary line: the sections below it say the
        same with more facts and a fix.
        """
        problems = self.problems
        head = (f"k8s-resource-monitor {self.version} diagnose at {iso_utc(self.taken_at)}: "
                + (f"{len(problems)} of {len(self.sections)} checks need attention" if problems else "all checks ok"))
        lines = [head]
        for name, section in self.sections.items():
            lines.append(f"  {name:<12} {section.status:<12} {section.summary}")
            for finding in section.findings if name != "health" else ():
                if finding.status != OK:
                    fix = f"\n{'':<17}fix: {finding.fix}" if finding.fix else ""
                    lines.append(f"{'':<15}{finding.status.upper()} {finding.subject}: {finding.detail}{fix}")
        return redact("\n".join(lines))


def diagnose(settings: Settings, now: float | None = None, timeout_seconds: float = 20.0, runs: int = 20,
             cgroup_root: Path = Path("/sys/fs/cgroup")) -> Diagnosis:
    """Run every check concurrently, each bounded by `timeout_seconds`; never raises for a part that is down.

    `now` (Unix seconds) is when collection freshness is judged; `runs` how many of the latest
    runs to include; `cgroup_root` where this container's memory accounting is read.
    """
    now = time.time() if now is None else now
    register_secrets(value.get_secret_value() for _, value in settings if isinstance(value, SecretStr))
    checks = {
        "health": lambda: _health(settings, now),
        "runs": lambda: _runs(settings, runs, now),
        "database": lambda: _database(settings, timeout_seconds),
        "prometheus": lambda: _prometheus(settings, timeout_seconds),
        "permissions": lambda: _permissions(settings, timeout_seconds),
        "memory": lambda: _memory(settings, cgroup_root),
    }
    found = run_concurrently(checks, timeout_seconds + _SECONDS_GRACE)
    sections = {}
    for name in SECTIONS:
        outcome = found[name]
        if isinstance(outcome, Section):
            sections[name] = outcome
        elif outcome is None:
            sections[name] = Section(UNAVAILABLE, f"not finished within {timeout_seconds:g}s (--timeout)")
        else:
            failure = f"the check itself failed: {type(outcome).__name__}: {outcome}"
            sections[name] = Section(UNAVAILABLE, redact(failure))
    return Diagnosis(now, redacted_settings(settings), sections)


def write_archive(diagnosis: Diagnosis, directory: Path) -> Path:
    """`k8s-monitor-diagnose-YYYYmmdd_HHMMSS.tar.gz` (UTC) in `directory`, mode 0600; its path.

    One folder of the same name inside: `summary.txt` (the verdict), `settings.json` and one JSON
    file per check. Written under a temporary name and renamed, so a final name is always complete.
    """
    directory.mkdir(parents=True, exist_ok=True)
    taken = diagnosis.taken_at
    while (archive := directory / archive_name(taken)).exists():
        taken += 1
    folder = archive.name.removesuffix(".tar.gz")
    files = {
        "summary.txt": diagnosis.verdict() + "\n",
        "settings.json": _json({"version": diagnosis.version, "taken_at": iso_utc(diagnosis.taken_at),
                                "environment": _environment(), "settings": diagnosis.settings}),
        **{f"{name}.json": _json(section.as_dict()) for name, section in diagnosis.sections.items()},
    }
    partial = directory / f".{archive.name}.partial"
    try:
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as raw, \
                tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in files.items():
                data = redact(text).encode("utf-8")
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size, info.mtime, info.mode = len(data), int(diagnosis.taken_at), 0o600
                tar.addfile(info, io.BytesIO(data))
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive


def archive_name(at: float) -> str:
    """The archive's file name for a diagnosis taken at `at` (Unix seconds), its UTC time in the name."""
    return f"{ARCHIVE_PREFIX}{datetime.fromtimestamp(at, UTC).strftime(TIME_FORMAT)}.tar.gz"


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by its variable name; secrets (and so their `*_FILE` contents) masked, URL credentials too."""
    shown: dict[str, Any] = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            value = MASK
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str):
            value = redact(value)
        shown[name.upper()] = value
    return shown


def _environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "in_cluster": "KUBERNETES_SERVICE_HOST" in os.environ, "uid": os.getuid()}


def _json(body: Any) -> str:
    return json.dumps(body, indent=2, default=str) + "\n"


# --- health ------------------------------------------------------------------------------------


def _health(settings: Settings, now: float) -> Section:
    report = check_health(settings, now)
    body = report.as_dict()
    findings = [Finding(name, OK if check.status == "healthy" else PROBLEM, check.error or check.status)
                for name, check in report.checks.items()]
    unwell = [f"{name} {check.status}" for name, check in report.checks.items() if check.status != "healthy"]
    summary = report.status + (f": {', '.join(unwell)}" if unwell else "")
    return Section(OK if report.status == "healthy" else PROBLEM, summary, findings, {"report": body})


# --- runs --------------------------------------------------------------------------------------


def _read_only(path: Path) -> sqlite3.Connection:
    """The database opened read-only whatever its schema version, for facts (not for use)."""
    if not path.is_file():
        raise StoreError(f"database {path} does not exist yet (DATABASE_PATH); run a collection first")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)


def _runs(settings: Settings, limit: int, now: float) -> Section:
    try:
        conn = _read_only(settings.database_path)
        try:
            conn.row_factory = sqlite3.Row
            rows = [dict(row) for row in conn.execute("SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
                                                      (limit,))]
        finally:
            conn.close()
    except (StoreError, sqlite3.Error) as exc:
        return Section(UNAVAILABLE, redact(f"runs cannot be read: {exc}"))
    for row in rows:
        row["duration_seconds"] = round(row["finished_at"] - row["started_at"], 3)
        row["started"], row["finished"] = iso_utc(row["started_at"]), iso_utc(row["finished_at"])
        row["error"] = redact(row["error"]) if row["error"] else None
    if not rows:
        return Section(PROBLEM, "no runs yet", [Finding("runs", PROBLEM, "the database holds no collection run",
                                                        "trigger one: `k8s-monitor collect`, or POST to collect")])
    counts = Counter(row["status"] for row in rows)
    summary = f"last {len(rows)}: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())
    success = next((row for row in rows if row["status"] in ("ok", "partial")), None)
    if success:
        timings = ", ".join(f"{part} {success[f'{part.lower()}_seconds'] or 0:.2f}s"
                            for part in ("Kubernetes", "Prometheus", "Database"))
        summary += (f"; last success run {success['id']} {ago(now - success['finished_at'])}: {success['pods']} "
                    f"pods in {success['duration_seconds']:.1f}s ({timings})")
    findings = [Finding(f"{n} run(s) {status}", PROBLEM, error)
                for (status, error), n in Counter((row["status"], row["error"]) for row in rows
                                                  if row["status"] in ("failed", "partial")).most_common(5)]
    latest = next((row for row in rows if row["status"] != "skipped"), rows[0])
    status = OK if latest["status"] in ("ok", "skipped") else PROBLEM
    return Section(status, f"latest run {latest['id']} {latest['status']}; {summary}", findings, {"runs": rows})


# --- database ----------------------------------------------------------------------------------


def _database(settings: Settings, timeout_seconds: float) -> Section:
    """Size, WAL, schema version, rows per table and `integrity_check`, read-only, within the timeout."""
    path = settings.database_path
    copies = sorted(p.name for p in path.parent.glob(f"{path.name}.pre-migration-*")) if path.parent.is_dir() else []
    data: dict[str, Any] = {"path": str(path), "exists": path.is_file(), "pre_migration_copies": copies}
    findings = []
    try:
        connect(path, readonly=True, migrate=False).close()  # the verdict the functions would meet
    except StoreError as exc:
        findings.append(Finding("open", PROBLEM, redact(str(exc)), _database_fix(str(exc))))
    if not data["exists"]:
        return Section(PROBLEM, f"no database at {path}", findings, data)
    wal = path.with_name(path.name + "-wal")
    data.update(size_bytes=path.stat().st_size, wal_bytes=wal.stat().st_size if wal.exists() else 0,
                total_bytes=database_size_bytes(path))
    stats = os.statvfs(path.parent)
    data["volume_free_bytes"] = stats.f_bavail * stats.f_frsize
    ends = time.monotonic() + timeout_seconds
    try:
        conn = _read_only(path)
        conn.set_progress_handler(lambda: time.monotonic() > ends, 10_000)  # interrupts a scan past the timeout
        try:
            data["schema_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
            data["expected_schema_version"] = SCHEMA_VERSION
            data["journal_mode"] = conn.execute("PRAGMA journal_mode").fetchone()[0]
            data["page_size"] = conn.execute("PRAGMA page_size").fetchone()[0]
            data["freelist_pages"] = conn.execute("PRAGMA freelist_count").fetchone()[0]
            names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            data["rows"] = {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
            data["integrity_check"] = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if str(exc) == "interrupted":
            findings.append(Finding("read", UNAVAILABLE, f"not finished within {timeout_seconds:g}s (--timeout)",
                                    "run again with a larger --timeout"))
        elif not findings:  # else opening it already said why
            message = f"database {path} cannot be read ({exc})"
            findings.append(Finding("read", PROBLEM, message, _database_fix(message)))
    except sqlite3.DatabaseError as exc:
        if not findings:
            message = f"database {path} cannot be read ({exc}): it is damaged"
            findings.append(Finding("read", PROBLEM, message, _database_fix(message)))
    integrity = data.get("integrity_check")
    if integrity is not None and integrity != ["ok"]:
        findings.append(Finding("integrity_check", PROBLEM, "; ".join(integrity[:5]), _database_fix("damaged")))
    if data["volume_free_bytes"] < 64 * 1024**2:
        findings.append(Finding("free space", PROBLEM, f"{data['volume_free_bytes']} bytes free on the volume",
                                "grow the volume or lower RETENTION_RAW_DAYS / RETENTION_HOURLY_DAYS"))
    summary = f"{path}: {_mib(data['size_bytes'])} + WAL {_mib(data['wal_bytes'])}, "
    if "schema_version" not in data:
        summary += "unreadable"
    else:
        summary += f"schema {data['schema_version']} (this version: {SCHEMA_VERSION})"
    if "rows" in data:
        summary += (f", integrity {'ok' if integrity == ['ok'] else 'not ok' if integrity else 'not checked'}, "
                    f"{sum(data['rows'].values())} rows in {len(data['rows'])} tables")
    return Section(PROBLEM if any(f.status != OK for f in findings) else OK, summary, findings, data)


def _database_fix(message: str) -> str:
    if "does not exist" in message:
        return "run a collection (`k8s-monitor collect`, or POST to collect): it creates the database"
    if "newer than" in message:
        return ("roll the image forward again, or restore the copy or backup taken before the upgrade (README: "
                "Upgrades and rollbacks)")
    if "expected" in message and "schema version" in message:
        return "run one collection: the collect function migrates the schema"
    return ("restore the newest good backup (`k8s-monitor backups`, then `k8s-monitor restore FILE`), or move the "
            "file away to start a new history")


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


# --- Prometheus --------------------------------------------------------------------------------


def _prometheus(settings: Settings, timeout_seconds: float) -> Section:
    """Each metric the collector queries (the METRIC_* settings), asked by name of the server."""
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.sources.prometheus import PrometheusClient, PrometheusError

    url = redact(settings.prometheus_url)
    wanted = {name.upper(): value for name, value in settings if name.startswith("metric_")}
    quick = settings.model_copy(update={"prometheus_timeout_seconds": min(settings.prometheus_timeout_seconds,
                                                                           timeout_seconds)})
    try:
        with PrometheusClient(quick, Deadline(timeout_seconds)) as prometheus:
            known = prometheus.metric_names()
            try:
                build = prometheus.build_info()
            except PrometheusError:
                build = {}
    except (PrometheusError, BudgetExceeded) as exc:
        why = f"Prometheus at {url} did not answer within {timeout_seconds:g}s (--timeout)" \
            if isinstance(exc, BudgetExceeded) else redact(str(exc))
        finding = Finding("PROMETHEUS_URL", PROBLEM, why,
                          "check PROMETHEUS_URL, that its host resolves and answers from the monitor's namespace "
                          "(`kubectl -n monitoring run curl --rm -i --restart=Never --image=curlimages/curl -- curl -s "
                          "<PROMETHEUS_URL>/-/ready`), and NetworkPolicies between the two")
        return Section(UNAVAILABLE, f"Prometheus at {url} cannot be asked", [finding], {"url": url})
    findings = [
        Finding(f"{variable}={metric}", OK if metric in known else PROBLEM,
                "present" if metric in known else "no series with this name",
                None if metric in known else
                f"check that the kubelets' cAdvisor metrics are scraped, or set {variable} to the name your setup uses")
        for variable, metric in wanted.items()
    ]
    missing = [f.subject for f in findings if f.status != OK]
    counted = f"{len(missing)} of {len(findings)} metrics missing" if missing else f"all {len(findings)} present"
    summary = f"{url} (Prometheus {build.get('version', 'version unknown')}): {counted}"
    return Section(PROBLEM if missing else OK, summary, findings,
                   {"url": url, "build_info": build, "metric_names_known": len(known)})


# --- Kubernetes permissions --------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    """One API call the collector makes, and where its RBAC rule belongs."""

    verb: str
    resource: Resource
    namespace: str | None = None  # None: cluster-wide
    name: str | None = None  # a rule limited by resourceNames

    @property
    def subject(self) -> str:
        """The permission as people read it: verb, resource, name and scope."""
        plural = f"{self.resource.plural}.{self.resource.group}" if self.resource.group else self.resource.plural
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {plural}{named} ({f'namespace {self.namespace}' if self.namespace else 'all namespaces'})"

    def rule(self) -> str:
        """The rule to add, in knative/rbac.yaml's terms."""
        group = self.resource.group or '""'
        names = f", resourceNames: [{self.name}]" if self.name else ""
        rule = f"{{apiGroups: [{group}], resources: [{self.resource.plural}]{names}, verbs: [{self.verb}]}}"
        if self.resource.plural == "leases":
            return f"add to Role {LEASE_ROLE} in namespace {self.namespace} (knative/rbac.yaml): {rule}"
        where = f", or to a Role in namespace {self.namespace}" if self.namespace else ""
        return f"add to ClusterRole {CLUSTER_ROLE} (knative/rbac.yaml){where}: {rule}"


def needed_permissions(settings: Settings, lease_namespace: str | None) -> list[Permission]:
    """Every verb and resource a collection uses: the lists (per NAMESPACES_INCLUDE namespace, or
    cluster-wide), nodes, and the collector Lease when it runs in a pod."""
    from shared.sources.kube import JOBS, LEASES, NODES, PODS, REPLICASETS

    scopes: tuple[str | None, ...] = settings.namespaces_include or (None,)
    needed = [Permission("list", resource, scope) for scope in scopes for resource in (PODS, REPLICASETS, JOBS)]
    needed.append(Permission("list", NODES))
    if lease_namespace:
        needed += [Permission("create", LEASES, lease_namespace),
                   Permission("get", LEASES, lease_namespace, settings.lease_name),
                   Permission("update", LEASES, lease_namespace, settings.lease_name)]
    return needed


REVIEWS_REFUSED = Finding(
    "create selfsubjectaccessreviews", PROBLEM,
    "these credentials may not ask what they may do (health needs it too); the reads were tried instead",
    f"add to ClusterRole {CLUSTER_ROLE} (knative/rbac.yaml): "
    f"{{apiGroups: [authorization.k8s.io], resources: [selfsubjectaccessreviews], verbs: [create]}}")


def _permissions(settings: Settings, timeout_seconds: float) -> Section:
    """Ask the API server, with a SelfSubjectAccessReview per call, whether these credentials may make it."""
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.domain.collection import lease_namespace
    from shared.sources.kube import KubeClient, KubeError, KubeForbidden, KubeNotFound, load_credentials

    quick = settings.model_copy(update={"kube_timeout_seconds": min(settings.kube_timeout_seconds, timeout_seconds),
                                        "kube_max_retries": 0})
    namespace = lease_namespace(settings)
    needed = needed_permissions(settings, namespace)
    asked_as = ("the pod's service account" if settings.in_cluster else
                f"the user of kubeconfig {settings.kubeconfig or '~/.kube/config'} (context "
                f"{settings.kube_context or 'current'}), not necessarily the monitor's service account")
    data: dict[str, Any] = {"asked_as": asked_as, "lease_namespace": namespace}
    findings = []
    try:
        credentials = load_credentials(quick)
        data["server"] = credentials.host
        with KubeClient(credentials, quick, Deadline(timeout_seconds)) as kube:
            reviews = True
            for permission in needed:
                if reviews:
                    try:
                        findings.append(_review(kube, permission))
                        continue
                    except (KubeForbidden, KubeNotFound) as exc:
                        if exc.status == 401:
                            raise  # nothing will be answered to these credentials
                        reviews = False
                        findings.append(REVIEWS_REFUSED)
                findings.append(_try(kube, permission))
    except (KubeError, BudgetExceeded) as exc:
        if isinstance(exc, KubeError) and exc.status == 401:
            fix = "renew the credentials: an expired token, a deleted ServiceAccount, or the kubeconfig's user"
        elif "cannot load Kubernetes credentials" in str(exc):
            fix = "set KUBECONFIG / KUBE_CONTEXT, or run in a pod with a service account"
        else:
            fix = "check that the API server answers from here (its address, network, NetworkPolicies)"
        why = (f"the API server did not answer every question within {timeout_seconds:g}s (--timeout)"
               if isinstance(exc, BudgetExceeded) else redact(str(exc)))
        findings.append(Finding("Kubernetes API", UNAVAILABLE, why, fix))
        return Section(UNAVAILABLE, "the API server cannot be asked", findings, data)
    if namespace is None:
        findings.append(Finding("leases", OK, "not checked: not running in a pod (no POD_NAMESPACE), so a collection "
                                              "here uses the file lock only"))
    subjects = {permission.subject for permission in needed}
    allowed = sum(1 for f in findings if f.subject in subjects and f.status == OK)
    summary = f"{allowed} of {len(needed)} API calls allowed, asked as {asked_as}"
    return Section(OK if all(f.status == OK for f in findings) else PROBLEM, summary, findings, data)


def _review(kube: KubeClient, permission: Permission) -> Finding:
    """Allowed or not, as a SelfSubjectAccessReview answers: nothing is read or changed."""
    from shared.sources.kube import SELF_SUBJECT_ACCESS_REVIEWS

    attributes = {"verb": permission.verb, "resource": permission.resource.plural, "group": permission.resource.group}
    for key, value in (("namespace", permission.namespace), ("name", permission.name)):
        if value:
            attributes[key] = value
    review = kube.request("POST", SELF_SUBJECT_ACCESS_REVIEWS, verb="create", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes}})
    status = review.get("status") or {}
    if status.get("allowed"):
        return Finding(permission.subject, OK, "allowed")
    why = status.get("reason") or status.get("evaluationError") or "no RBAC rule allows it"
    return Finding(permission.subject, PROBLEM, f"denied ({why})", permission.rule())


def _try(kube: KubeClient, permission: Permission) -> Finding:
    """Where reviews are refused: a read is tried (one item); a write is not, it would change the cluster."""
    from shared.sources.kube import KubeForbidden, KubeNotFound

    if permission.verb not in ("list", "get"):
        return Finding(permission.subject, UNAVAILABLE, "not checked: trying it would change the cluster",
                       permission.rule())
    try:
        kube.request("GET", permission.resource, permission.namespace, permission.name, verb=permission.verb,
                     params={"limit": 1} if permission.verb == "list" else None)
    except KubeNotFound:
        pass  # allowed to look, and nothing is there yet (the Lease before the first collection)
    except KubeForbidden as exc:
        return Finding(permission.subject, PROBLEM, f"denied: {exc}", permission.rule())
    return Finding(permission.subject, OK, "allowed (tried)")


# --- memory ------------------------------------------------------------------------------------


def _memory(settings: Settings, cgroup_root: Path) -> Section:
    """This container's memory accounting (cgroup), and the monitor's own containers as it collected them."""
    data: dict[str, Any] = {"kube_page_size": settings.kube_page_size}
    findings = []
    fix = MEMORY_FIX.format(page_size=settings.kube_page_size)
    cgroup = container_memory(cgroup_root)
    data["this_container"] = cgroup
    if cgroup:
        limit, peak, kills = cgroup.get("limit_bytes"), cgroup.get("peak_bytes"), cgroup.get("oom_kills", 0)
        near = bool(limit and peak and peak >= MEMORY_NEAR_LIMIT_RATIO * limit)
        detail = (f"peak {_mib(peak) if peak else 'unknown'}, limit {_mib(limit) if limit else 'none'}, "
                  f"{kills} OOM kill(s)")
        findings.append(Finding("this container (where diagnose runs)", PROBLEM if kills or near else OK, detail,
                                fix if kills or near else None))
    namespace = settings.pod_namespace or "monitoring"
    try:
        own = _own_containers(settings.database_path, namespace)
    except (StoreError, sqlite3.Error) as exc:
        own = None
        data["own_containers_error"] = redact(str(exc))
    data["own_containers"] = own
    for row in own or ():
        subject = f"pod {namespace}/{row['pod']} container {row['container']}"
        limit, peak = row["memory_limit_bytes"], row["memory_working_set_max_bytes"]
        oom = row["last_termination_reason"] == "OOMKilled"
        near = bool(limit and peak and peak >= MEMORY_NEAR_LIMIT_RATIO * limit)
        detail = (f"peak working set {_mib(peak) if peak else 'unknown'}, limit {_mib(limit) if limit else 'none'}, "
                  f"{row['restart_count']} restart(s)" + (", last terminated OOMKilled" if oom else ""))
        findings.append(Finding(subject, PROBLEM if oom or near else OK, detail, fix if oom or near else None))
    if own is None:
        own_text = "the monitor's own containers unknown (no readable database)"
    else:
        own_text = f"{len(own)} container(s) of the monitor in namespace {namespace} in the last collection"
    problems = [f for f in findings if f.status != OK]
    summary = (f"{findings[0].detail} here; " if cgroup else "no cgroup memory accounting here; ") + own_text
    return Section(PROBLEM if problems else OK, summary + f"; KUBE_PAGE_SIZE={settings.kube_page_size}", findings, data)


def container_memory(cgroup_root: Path) -> dict[str, int | None]:
    """Limit, current use, peak and OOM kills of this process's cgroup (v2, else v1); {} when not there.

    Run in a pod (`kubectl exec`), this is that container's accounting: the peak includes every
    request it served since it started.
    """

    def number(path: Path) -> int | None:
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def counter(path: Path, key: str) -> int:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in lines if line.startswith(key + " ")), 0)

    if (cgroup_root / "memory.current").exists():  # v2: the root, as mounted in a container
        return {"limit_bytes": number(cgroup_root / "memory.max"),
                "current_bytes": number(cgroup_root / "memory.current"),
                "peak_bytes": number(cgroup_root / "memory.peak"),
                "oom_kills": counter(cgroup_root / "memory.events", "oom_kill")}
    v1 = cgroup_root / "memory"
    if (v1 / "memory.usage_in_bytes").exists():
        limit = number(v1 / "memory.limit_in_bytes")
        return {"limit_bytes": limit if limit is not None and limit < 2**60 else None,  # v1's "no limit": ~2**63
                "current_bytes": number(v1 / "memory.usage_in_bytes"),
                "peak_bytes": number(v1 / "memory.max_usage_in_bytes"),
                "oom_kills": counter(v1 / "memory.oom_control", "oom_kill")}
    return {}


def _own_containers(path: Path, namespace: str) -> list[dict[str, Any]]:
    """The monitor's containers in the latest ok/partial run, as it collected itself: peak memory vs limit.

    They are the pods of the Deployments Knative makes for the MONITOR_SERVICES in `namespace`.
    """
    conn = _read_only(path)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            """
            SELECT w.kind, w.name AS workload, c.name AS container, p.name AS pod,
                   s.memory_working_set_max_bytes, s.memory_limit_bytes, s.restart_count, s.last_termination_reason
            FROM samples s JOIN pods p ON p.id = s.pod_id JOIN containers c ON c.id = s.container_id
            JOIN workloads w ON w.id = c.workload_id
            WHERE w.namespace = ? AND s.run_id = (
                SELECT id FROM runs WHERE status IN ('ok', 'partial') ORDER BY started_at DESC, id DESC LIMIT 1)
            ORDER BY workload, container, pod
            """, (namespace,)).fetchall()
    finally:
        conn.close()
    return [dict(row) for row in rows if row["kind"] == "Deployment" and row["workload"].endswith("-deployment")
            and row["workload"].startswith(tuple(f"{service}-" for service in MONITOR_SERVICES))]
