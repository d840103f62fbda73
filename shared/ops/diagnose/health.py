"""The diagnose check of the health report: the same verdict `/health` gives, as one summary line."""

from __future__ import annotations

from shared.core.settings import Settings
from shared.ops.diagnose.findings import OK, PROBLEM, Finding, Section
from shared.ops.health import HEALTHY, check_health


def health_section(settings: Settings, now: float) -> Section:
    """Each component's status as a finding; ok only when the monitor is healthy."""
    report = check_health(settings, now)
    body = report.as_dict()
    findings = [Finding(name, OK if check.status == HEALTHY else PROBLEM, check.error or check.status)
                for name, check in report.checks.items()]
    unwell = [f"{name} {check.status}" for name, check in report.checks.items() if check.status != HEALTHY]
    summary = report.status + (f": {', '.join(unwell)}" if unwell else "")
    return Section(OK if report.status == HEALTHY else PROBLEM, summary, findings, {"report": body})
