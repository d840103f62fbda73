"""The diagnose check of Prometheus: does it answer, which version, how it is reached, and has it this
setup's series of each metric the collector queries."""

from __future__ import annotations

from typing import Any

from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE, Finding, Section

UNREACHABLE_FIX = ("check PROMETHEUS_URL, that its host resolves and answers from the monitor's namespace "
                   "(`kubectl -n monitoring run curl --rm -i --restart=Never --image=curlimages/curl -- curl -s "
                   "<PROMETHEUS_URL>/-/ready`), and NetworkPolicies between the two")
OPTIONAL_NOTE = "absent: optional, its figure stays empty (older kubelets and some relabelling setups drop it)"


def prometheus_section(settings: Settings, timeout_seconds: float) -> Section:
    """Each metric the collector queries (the METRIC_* settings), asked of the server in this setup's scope."""
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.sources.metric_presence import REQUIRED_METRICS, metric_presence, queried_metrics, scope_text
    from shared.sources.prometheus import PrometheusClient, PrometheusError, PrometheusRefused

    url = redact(settings.prometheus_url + settings.prometheus_path_prefix)
    setup = access_facts(settings)
    quick = settings.model_copy(update={"prometheus_timeout_seconds": min(settings.prometheus_timeout_seconds,
                                                                           timeout_seconds)})
    try:
        with PrometheusClient(quick, Deadline(timeout_seconds)) as prometheus:
            presence = metric_presence(prometheus, settings)
            try:
                build = prometheus.build_info()
            except PrometheusError:
                build = {}
    except (PrometheusError, BudgetExceeded) as exc:
        why = f"Prometheus at {url} did not answer within {timeout_seconds:g}s (--timeout)" \
            if isinstance(exc, BudgetExceeded) else redact(str(exc))
        fix = None if isinstance(exc, PrometheusRefused) else UNREACHABLE_FIX  # a refusal names its setting
        return Section(UNAVAILABLE, f"Prometheus at {url} cannot be asked",
                       [Finding("PROMETHEUS_URL", PROBLEM, why, fix)], {"url": url, "access": setup})
    scope = scope_text(settings)
    findings = []
    for variable, metric in queried_metrics(settings).items():
        subject = f"{variable}={metric}"
        if variable not in presence.missing:
            findings.append(Finding(subject, OK, "present"))
        elif variable not in REQUIRED_METRICS:
            findings.append(Finding(subject, OK, OPTIONAL_NOTE))
        else:
            matching = f" matching {scope}" if scope else ""
            matchers = ", and PROMETHEUS_CLUSTER_LABEL, CLUSTER_NAME and PROMETHEUS_SELECTOR" if scope else ""
            findings.append(Finding(subject, PROBLEM, f"no series{matching} in the last hour",
                                    f"check that the kubelets' cAdvisor metrics are scraped{matchers}, or set "
                                    f"{variable} to the name your setup uses"))
    missing = [f.subject for f in findings if f.status != OK]
    absent = len(presence.missing_optional)
    counted = f"{len(missing)} of {len(REQUIRED_METRICS)} required metrics missing" if missing else \
        f"required metrics present{f', {absent} optional absent' if absent else ''}"
    version = build.get("version", "version unknown")
    summary = f"{url} (Prometheus {version}, cluster {settings.cluster_name}): {counted}"
    return Section(PROBLEM if missing else OK, summary, findings,
                   {"url": url, "build_info": build, "access": setup, "selector": scope or None,
                    "missing_metrics": sorted(presence.missing.values())})


def access_facts(settings: Settings) -> dict[str, Any]:
    """How Prometheus is reached, without a secret: header names but not their values, whether auth is set."""
    return {
        "cluster_name": settings.cluster_name,
        "cluster_label": settings.prometheus_cluster_label,
        "selector": [str(matcher) for matcher in settings.prometheus_selector],
        "path_prefix": settings.prometheus_path_prefix or None,
        "header_names": sorted(settings.prometheus_header_values()),
        "auth": ("bearer token file" if settings.prometheus_bearer_token_file else "bearer token"
                 if settings.prometheus_bearer_token else "basic" if settings.prometheus_username else "none"),
        "ca_file": str(settings.prometheus_ca_file) if settings.prometheus_ca_file else None,
        "tls_insecure_skip_verify": settings.prometheus_tls_insecure_skip_verify,
        "max_concurrency": settings.prometheus_max_concurrency,
    }
