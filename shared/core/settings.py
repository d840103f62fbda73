"""All configuration in one typed object, read from the environment once per process.

Every setting is an environment variable named like the field in upper case (`DATABASE_PATH`,
`PROMETHEUS_URL`, ...). A bad value stops the process at start with a message that names the
variable, so an operator fixes the manifest instead of reading a traceback. Secrets are `SecretStr`
until the moment they are used, and each has a `<NAME>_FILE` twin for mounted Secret files.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.core.database_url import DatabaseTarget, SqliteTarget, parse_database_url
from shared.core.http_headers import NAMING_HEADERS, parse_headers
from shared.core.kubeconfig_cluster import kubeconfig_cluster_name
from shared.core.matchers import LABEL_NAME, LabelMatcher, parse_matchers

CommaList = Annotated[tuple[str, ...], NoDecode]
CHANNELS = ("slack", "email", "webhook")  # notification channels, as routes and `notifications` name them
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}  # the usual port of each SMTP_SECURITY


# Every secret setting; each has a `<NAME>_FILE` twin read at start (a mounted Secret).
SECRET_FIELDS = ("slack_webhook_url", "webhook_url", "smtp_password", "alert_webhook_token", "prometheus_bearer_token",
                 "prometheus_password", "prometheus_headers", "database_url", "database_password")
DEFAULT_CLUSTER_NAME = "default"  # CLUSTER_NAME in a pod, or where no kubeconfig context names a cluster

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# a label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def is_namespace_name(name: str) -> bool:
    """A DNS-1123 label, as Kubernetes requires of namespace names (and safe inside a PromQL regex)."""
    return len(name) <= 63 and bool(_NAMESPACE_NAME.match(name))


class NamedSettingError(ValueError):
    """A bad value whose message starts with the variable it is about (a `_FILE` reader, or settings that
    contradict each other), so the error names that variable rather than the field it was found on."""


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    """Settings of every function and of the CLI.

    Parameters are documented in README.md ("Configuration"); the field names, upper-cased, are
    the environment variables.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, validate_default=True)

    # --- storage -------------------------------------------------------------------------------
    database_path: Path = Path("/data/k8s_metrics.db")
    database_url: SecretStr | None = Field(None, description="sqlite:///path or postgresql://user@host:5432/db")
    database_url_file: Path | None = None
    database_password: SecretStr | None = None
    database_password_file: Path | None = None
    retention_raw_days: int = Field(7, ge=1, le=3650)
    retention_hourly_days: int = Field(90, ge=1, le=3650)
    retention_batch_rows: int = Field(5000, ge=100, le=1_000_000)
    retention_budget_seconds: float = Field(
        60.0, gt=0, le=3600, description="time the retention pass after a collection may take; the next goes on")

    # --- Kubernetes ----------------------------------------------------------------------------
    kubeconfig: Path | None = None
    kube_context: str | None = None
    kube_timeout_seconds: float = Field(10.0, gt=0, le=120)
    kube_page_size: int = Field(500, ge=1, le=10_000)
    kube_max_retries: int = Field(3, ge=0, le=10)
    namespaces_include: CommaList = ()
    namespaces_exclude: CommaList = ()
    pod_name: str = Field("", description="holder identity of the Lease (downward API POD_NAME)")
    pod_namespace: str = Field("", description="namespace of the Lease (downward API POD_NAMESPACE)")
    lease_name: str = "k8s-resource-monitor-collector"
    lease_duration_seconds: int = Field(60, ge=5, le=3600)

    cluster_name: str = Field("", description="unset: the kubeconfig context's cluster, else DEFAULT_CLUSTER_NAME")

    # --- Prometheus ----------------------------------------------------------------------------
    prometheus_url: str = "http://prometheus:9090"
    prometheus_path_prefix: str = Field("", description="where the API lives under the URL: Mimir's /prometheus")
    prometheus_timeout_seconds: float = Field(20.0, gt=0, le=300)
    prometheus_max_concurrency: int = Field(3, ge=1, le=16)
    prometheus_bearer_token: SecretStr | None = None
    prometheus_bearer_token_file: Path | None = Field(None, description="read at start, and again by every run")
    prometheus_username: str | None = None
    prometheus_password: SecretStr | None = None
    prometheus_password_file: Path | None = None
    prometheus_headers: SecretStr | None = Field(None, description="Name=value pairs separated by commas")
    prometheus_headers_file: Path | None = None
    prometheus_ca_file: Path | None = None
    prometheus_tls_insecure_skip_verify: bool = False
    prometheus_cluster_label: str | None = None
    prometheus_selector: Annotated[tuple[LabelMatcher, ...], NoDecode] = ()
    prometheus_max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    prometheus_rate_seconds: int = Field(120, ge=30, le=3600)
    prometheus_step_seconds: int = Field(60, ge=5, le=3600)
    metric_cpu_usage: str = "container_cpu_usage_seconds_total"
    metric_memory_working_set: str = "container_memory_working_set_bytes"
    metric_cpu_throttled_periods: str = "container_cpu_cfs_throttled_periods_total"
    metric_cpu_periods: str = "container_cpu_cfs_periods_total"
    metric_oom_events: str = "container_oom_events_total"
    label_namespace: str = "namespace"
    label_pod: str = "pod"
    label_container: str = "container"

    # --- collection ----------------------------------------------------------------------------
    collect_interval_seconds: int = Field(300, ge=30, le=86_400)
    collect_budget_seconds: float = Field(240.0, gt=0, le=3600)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    k_sink: str | None = None
    k_ce_overrides: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="SinkBinding's K_CE_OVERRIDES: extension attributes to add")

    # --- backup --------------------------------------------------------------------------------
    backup_dir: Path = Path("/backup")
    backup_retention_days: int = Field(7, ge=1, le=3650)

    # --- alerts --------------------------------------------------------------------------------
    alert_repeat_interval_seconds: int = Field(4 * 3600, ge=60)
    alert_collection_failures: int = Field(5, ge=1)
    alert_stale_intervals: int = Field(3, ge=1)
    alert_memory_near_limit_ratio: float = Field(0.9, gt=0, le=1)
    alert_cpu_throttled_ratio: float = Field(0.25, gt=0, le=1)
    alert_database_max_bytes: int = Field(2 * 1024**3, ge=1024)
    alert_backup_max_age_hours: float = Field(26.0, gt=0)
    alert_restart_window_seconds: int = Field(3600, ge=60, le=7 * 86_400)
    alert_resource_change_hurt: bool = Field(
        False, description="ResourceChangeHurt: OOM kills or throttling rose after a request or limit changed")
    alert_route_critical: CommaList = CHANNELS
    alert_route_warning: CommaList = ("slack", "webhook")
    alert_route_info: CommaList = ()
    alert_webhook_token: SecretStr | None = None
    alert_webhook_token_file: Path | None = None
    alert_cloudevents_without_token: bool = Field(
        False, description="accept our alert CloudEvents without ALERT_WEBHOOK_TOKEN: a Knative Broker cannot send it")

    # --- notification channels -----------------------------------------------------------------
    slack_webhook_url: SecretStr | None = None
    slack_webhook_url_file: Path | None = None
    webhook_url: SecretStr | None = None
    webhook_url_file: Path | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535, description="unset: the port of SMTP_SECURITY (SMTP_PORTS)")
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_from: str | None = None
    smtp_to: CommaList = ()
    smtp_ca_file: Path | None = None
    notify_max_attempts: int = Field(5, ge=1, le=20)
    notify_backoff_seconds: float = Field(1.0, ge=0, le=60)
    notify_max_backoff_seconds: float = Field(30.0, ge=0, le=600)
    notify_timeout_seconds: float = Field(10.0, gt=0, le=120)

    # --- reports -------------------------------------------------------------------------------
    report_window_days: float = Field(7.0, gt=0)
    report_cpu_percentile: float = Field(95.0, gt=0, le=100)
    report_memory_headroom: float = Field(0.15, ge=0, le=10)
    report_cpu_floor_millicores: int = Field(10, ge=0)
    report_memory_floor_bytes: int = Field(16 * 1024**2, ge=0)
    report_min_samples: int = Field(12, ge=1)
    report_cpu_max_millicores: int | None = Field(None, ge=1, description="largest CPU request recommended")
    report_memory_max_bytes: int | None = Field(None, ge=1, description="largest memory recommended")
    report_cpu_limit_policy: str = Field("keep", description="none, keep or ratio:N (limit = N x request)")
    report_memory_limit_policy: Literal["equal-request", "keep"] = "equal-request"
    report_min_change_ratio: float = Field(0.1, ge=0, le=10)
    report_min_confidence: float = Field(0.5, ge=0, le=1)
    report_allow_hpa: bool = False
    report_change_window_hours: float = Field(24.0, gt=0, le=24 * 90)
    report_group_by_label: str | None = Field(None, description="a pod label (team): savings per value")
    report_savings_exclude: CommaList = ("kube-system",)
    price_cpu_core_hour: float = Field(0.031611, ge=0)
    price_memory_gib_hour: float = Field(0.004549, ge=0)
    currency: str = Field("USD", min_length=1, max_length=8)
    fleet_window_days: Annotated[tuple[int, ...], NoDecode] = Field(
        (30,), description="whole-day windows whose fleet rows the collections store, besides REPORT_WINDOW_DAYS")
    fleet_refresh_minutes: float = Field(
        60.0, ge=0, le=1440, description="a collection recomputes its fleet rows once they are this old; 0: each")

    # --- metrics -------------------------------------------------------------------------------
    metrics_workload_gauges: bool = Field(
        False, description="per workload container request and recommendation gauges on /metrics")
    metrics_workload_gauges_max: int = Field(500, ge=0, le=100_000, description="at most this many of those series")

    # --- health, logging -----------------------------------------------------------------------
    health_check_timeout_seconds: float = Field(2.0, gt=0, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator(
        "namespaces_include", "namespaces_exclude", "smtp_to", "report_savings_exclude",
        "alert_route_critical", "alert_route_warning", "alert_route_info", "fleet_window_days",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("k_ce_overrides", mode="before")
    @classmethod
    def _ce_extensions(cls, value: object) -> object:
        """`{"extensions": {"name": "value"}}` as SinkBinding writes it, kept as the extensions map."""
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValueError(f"is not JSON: {exc}") from None
        extensions = parsed.get("extensions", {}) if isinstance(parsed, dict) else None
        if not isinstance(extensions, dict):
            raise ValueError('must be a JSON object like {"extensions": {"name": "value"}}')
        return {str(name): str(item) for name, item in extensions.items()}

    @field_validator("namespaces_include", "namespaces_exclude", "report_savings_exclude")
    @classmethod
    def _namespace_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not is_namespace_name(name)]
        if bad:
            raise ValueError(f"not a namespace name: {', '.join(bad)}")
        return value

    @field_validator("fleet_window_days")
    @classmethod
    def _window_days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [str(days) for days in value if not 1 <= days <= 3650]
        if bad:
            raise ValueError(f"not a number of days from 1 to 3650: {', '.join(bad)}")
        return tuple(sorted(set(value)))

    @field_validator("report_cpu_limit_policy")
    @classmethod
    def _cpu_limit_policy(cls, value: str) -> str:
        value = value.strip()
        if value in ("none", "keep"):
            return value
        ratio = value.removeprefix("ratio:")
        try:
            valid = value.startswith("ratio:") and 1 <= float(ratio) <= 100
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("must be none, keep or ratio:N with N from 1 to 100 (limit = N x request), like ratio:2")
        return value

    @field_validator("report_group_by_label")
    @classmethod
    def _label_key(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not LABEL_KEY.fullmatch(value):
            raise ValueError("must be a Kubernetes label key like team or example.com/team")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("alert_route_critical", "alert_route_warning", "alert_route_info")
    @classmethod
    def _known_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {', '.join(unknown)}; use {', '.join(CHANNELS)}")
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("prometheus_path_prefix")
    @classmethod
    def _path_prefix(cls, value: str) -> str:
        """`/prometheus` or `/select/0/prometheus`: a path, kept without its trailing slash."""
        value = value.strip()
        if not value:
            return ""
        if not value.startswith("/") or any(char in value for char in "?# \t") or "//" in value:
            raise ValueError("must be a path starting with / (like /prometheus), without ?, # or spaces")
        return value.rstrip("/")

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        value = value.strip()
        if len(value) > 253 or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ValueError("must be at most 253 characters, without control characters")
        return value

    @field_validator("prometheus_cluster_label")
    @classmethod
    def _label_name(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and (not LABEL_NAME.fullmatch(value) or value.startswith("__")):
            raise ValueError("must be a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), like cluster")
        return value

    @field_validator("metric_cpu_usage", "metric_memory_working_set", "metric_cpu_throttled_periods",
                     "metric_cpu_periods", "metric_oom_events")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not METRIC_NAME.fullmatch(value):
            raise ValueError("must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        return value

    @field_validator("label_namespace", "label_pod", "label_container")
    @classmethod
    def _query_label_name(cls, value: str) -> str:
        if not LABEL_NAME.fullmatch(value):
            raise ValueError("must be a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        return value

    @field_validator("prometheus_selector", mode="before")
    @classmethod
    def _selector(cls, value: object) -> object:
        """PromQL matchers, parsed here so a typo stops the start, never a query."""
        if not isinstance(value, str):
            return value
        matchers = parse_matchers(value)
        if any(matcher.name == "__name__" for matcher in matchers):
            raise ValueError("must not match __name__: the metric names are METRIC_* settings")
        return matchers

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        """Fill each secret from its `<NAME>_FILE` twin (a mounted Secret) when that is set."""
        for name in SECRET_FIELDS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise NamedSettingError(f"{name.upper()}_FILE: cannot read {path}: {exc.strerror}") from None
            object.__setattr__(self, name, SecretStr(text))
        return self

    @model_validator(mode="after")
    def _database(self) -> Settings:
        """DATABASE_URL parsed once (DATABASE_PATH when it is unset); a SQLite URL sets DATABASE_PATH."""
        if self.database_url is None:
            if self.database_password is not None:
                raise NamedSettingError("DATABASE_PASSWORD: set, but DATABASE_URL names no PostgreSQL server")
            return self
        password = self.database_password.get_secret_value() if self.database_password is not None else None
        try:
            target = parse_database_url(self.database_url.get_secret_value(), password)
        except ValueError as exc:
            raise NamedSettingError(f"DATABASE_URL: {exc}") from None
        if isinstance(target, SqliteTarget):
            if "database_path" in self.model_fields_set and target.path != self.database_path:
                raise NamedSettingError(f"DATABASE_URL: names {target.path}, DATABASE_PATH {self.database_path}:"
                                        " keep one of them")
            if password is not None:
                raise NamedSettingError("DATABASE_PASSWORD: a SQLite database takes no password")
            object.__setattr__(self, "database_path", target.path)
        return self

    @model_validator(mode="after")
    def _cluster_name_default(self) -> Settings:
        """CLUSTER_NAME unset: the kubeconfig context's cluster outside a pod, else `default`.

        A query limited by PROMETHEUS_CLUSTER_LABEL must name the cluster as Prometheus does: a
        guess there would make every query silently empty, so that combination needs CLUSTER_NAME.
        """
        if self.cluster_name:
            return self
        if self.prometheus_cluster_label:
            raise NamedSettingError(
                f"CLUSTER_NAME: PROMETHEUS_CLUSTER_LABEL={self.prometheus_cluster_label} limits every query to "
                f"series whose {self.prometheus_cluster_label} label equals CLUSTER_NAME: set CLUSTER_NAME to this "
                f"cluster's value of that label")
        found = None if self.in_cluster else kubeconfig_cluster_name(self.kubeconfig, self.kube_context)
        object.__setattr__(self, "cluster_name", found or DEFAULT_CLUSTER_NAME)
        return self

    @model_validator(mode="after")
    def _prometheus_access(self) -> Settings:
        """Headers parse, one way of authenticating, and a CA file that is a readable certificate bundle."""
        headers = self.prometheus_header_values()  # raises naming PROMETHEUS_HEADERS
        bearer = self.prometheus_bearer_token is not None or self.prometheus_bearer_token_file is not None
        if self.prometheus_password is not None and not self.prometheus_username:
            raise NamedSettingError("PROMETHEUS_PASSWORD: set PROMETHEUS_USERNAME too (basic auth needs both)")
        if self.prometheus_username and bearer:
            raise NamedSettingError("PROMETHEUS_USERNAME: basic auth and PROMETHEUS_BEARER_TOKEN(_FILE) are both set, "
                                    "and a request carries one Authorization header: keep one of them")
        if any(name.lower() == "authorization" for name in headers) and (bearer or self.prometheus_username):
            raise NamedSettingError("PROMETHEUS_HEADERS: sets Authorization, which PROMETHEUS_USERNAME or "
                                    "PROMETHEUS_BEARER_TOKEN(_FILE) also set: keep one of them")
        if self.prometheus_ca_file is not None:
            if self.prometheus_tls_insecure_skip_verify:
                raise NamedSettingError("PROMETHEUS_TLS_INSECURE_SKIP_VERIFY: true turns off the verification "
                                        "PROMETHEUS_CA_FILE is for: set one of them")
            try:
                ssl.create_default_context(cafile=str(self.prometheus_ca_file))
            except ssl.SSLError as exc:  # before OSError, its base class
                raise NamedSettingError(f"PROMETHEUS_CA_FILE: {self.prometheus_ca_file} holds no PEM certificate: "
                                        f"{exc.reason or exc}") from None
            except OSError as exc:
                raise NamedSettingError(f"PROMETHEUS_CA_FILE: cannot read {self.prometheus_ca_file}: "
                                        f"{exc.strerror or exc}") from None
        return self

    @model_validator(mode="after")
    def _smtp_port_and_security(self) -> Settings:
        """SMTP_PORT follows SMTP_SECURITY unless set; a login is never sent in clear over the network.

        `ssl` on 587 (or `starttls` on 465) hangs until the timeout, and SMTP_SECURITY=none with
        SMTP_USERNAME hands the password to anyone on the path: both are easy to write and slow to
        find, so the first is avoided by the default port and the second refused at start.
        """
        if "smtp_port" not in self.model_fields_set:
            object.__setattr__(self, "smtp_port", SMTP_PORTS[self.smtp_security])
        if self.smtp_host and self.smtp_security == "none" and self.smtp_username and not _is_loopback(self.smtp_host):
            raise NamedSettingError(
                f"SMTP_SECURITY: none with SMTP_USERNAME set would send the SMTP login and password in clear to "
                f"{self.smtp_host}; use starttls (port 587) or ssl (port 465), or unset SMTP_USERNAME for a relay "
                f"that needs no login (a login without TLS is accepted only on localhost)")
        return self

    def secret_values(self) -> list[str]:
        """Every secret that is set, in plain text: what log and answer redaction must mask.

        Each header value of PROMETHEUS_HEADERS counts on its own (an error may quote one alone), but
        a tenant id's: it names, often a namespace too, and masking it would hide that namespace.
        """
        secrets: list[SecretStr | None] = [getattr(self, name) for name in SECRET_FIELDS
                                           if name != "prometheus_headers"]
        headers = [value for name, value in self.prometheus_header_values().items()
                   if name.lower() not in NAMING_HEADERS]
        return [secret.get_secret_value() for secret in secrets if secret is not None] + headers

    def prometheus_header_values(self) -> dict[str, str]:
        """PROMETHEUS_HEADERS as {name: value}; a ValueError naming the variable when it does not parse."""
        if self.prometheus_headers is None:
            return {}
        try:
            return parse_headers(self.prometheus_headers.get_secret_value())
        except ValueError as exc:
            raise NamedSettingError(f"PROMETHEUS_HEADERS: {exc}") from None

    @property
    def database(self) -> DatabaseTarget:
        """Where the store lives (DATABASE_URL, else the SQLite file at DATABASE_PATH). Parsed again on each
        use (microseconds), so a copy of these settings with another DATABASE_PATH means that file."""
        if self.database_url is None or self.database_url.get_secret_value().startswith("sqlite:"):
            return SqliteTarget(self.database_path)
        password = self.database_password.get_secret_value() if self.database_password is not None else None
        return parse_database_url(self.database_url.get_secret_value(), password)

    @property
    def in_cluster(self) -> bool:
        """True when running in a pod with a service account and no kubeconfig was given."""
        return self.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ

    @property
    def lock_path(self) -> Path:
        """File lock beside the database: the single-collector guard outside Kubernetes."""
        return self.database_path.with_name(self.database_path.name + ".lock")


def _is_loopback(host: str) -> bool:
    """`localhost` or a loopback address: traffic that never leaves the machine (a local relay)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (overrides win) or raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad variable: `NAME: what is wrong (got 'value')`."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field.upper() if field else "configuration"
        message = error["msg"].removeprefix("Value error, ")
        if isinstance((error.get("ctx") or {}).get("error"), NamedSettingError):
            lines.append(message)  # already names its variable
            continue
        got = error.get("input")
        shown = "" if field.endswith(("password", "token", "url")) or got is None else f" (got {got!r})"
        lines.append(f"{name}: {message}{shown}")
    return "invalid configuration: " + "; ".join(lines)
