"""The diagnose check of Prometheus: does it answer, which version, and has it each metric the collector queries."""

from __future__ import annotations

from shared.core.logs import redact
from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, UNAVAILABLE, Finding, Section

UNREACHABLE_FIX = ("check PROMETHEUS_URL, that its host resolves and answers from the monitor's namespace "
                   "(`kubectl -n monitoring run curl --rm -i --restart=Never --image=curlimages/curl -- curl -s "
                   "<PROMETHEUS_URL>/-/ready`), and NetworkPolicies between the two")


def prometheus_section(settings: Settings, timeout_seconds: float) -> Section:
    """Each metric the collector queries (the METRIC_* settings), asked by name of the server."""
    from shared.core.deadline import BudgetExceeded, Deadline
    from shared.sources.metric_presence import metric_presence, queried_metrics
    from shared.sources.prometheus import PrometheusClient, PrometheusError

    url = redact(settings.prometheus_url)
    wanted = queried_metrics(settings)
    quick = settings.model_copy(update={"prometheus_timeout_seconds": min(settings.prometheus_timeout_seconds,
                                                                           timeout_seconds)})
    try:
        with PrometheusClient(quick, Deadline(timeout_seconds)) as prometheus:
            presence = metric_presence(prometheus, wanted.values())
            try:
                build = prometheus.build_info()
            except PrometheusError:
                build = {}
    except (PrometheusError, BudgetExceeded) as exc:
        why = f"Prometheus at {url} did not answer within {timeout_seconds:g}s (--timeout)" \
            if isinstance(exc, BudgetExceeded) else redact(str(exc))
        return Section(UNAVAILABLE, f"Prometheus at {url} cannot be asked",
                       [Finding("PROMETHEUS_URL", PROBLEM, why, UNREACHABLE_FIX)], {"url": url})
    findings = [
        Finding(f"{variable}={metric}", PROBLEM, "no series with this name",
                f"check that the kubelets' cAdvisor metrics are scraped, or set {variable} to the name your setup uses")
        if metric in presence.missing else Finding(f"{variable}={metric}", OK, "present")
        for variable, metric in wanted.items()
    ]
    missing = [f.subject for f in findings if f.status != OK]
    counted = f"{len(missing)} of {len(findings)} metrics missing" if missing else f"all {len(findings)} present"
    summary = f"{url} (Prometheus {build.get('version', 'version unknown')}): {counted}"
    return Section(PROBLEM if missing else OK, summary, findings,
                   {"url": url, "build_info": build, "metric_names_known": presence.known_count})
