"""The diagnosis: every check run at once, each bounded by one timeout, and the verdict the command prints.

Secrets never reach it: SecretStr settings (and so the contents of their `*_FILE`s) are masked,
URL credentials too, and they are registered with the log redactor, which every text passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared import __version__
from shared.core.formats import iso_utc
from shared.core.logs import MASK, redact, register_secrets
from shared.core.settings import Settings
from shared.ops.diagnose.database import database_section
from shared.ops.diagnose.findings import OK, UNAVAILABLE, Section
from shared.ops.diagnose.health import health_section
from shared.ops.diagnose.memory import memory_section
from shared.ops.diagnose.permissions import permissions_section
from shared.ops.diagnose.prometheus import prometheus_section
from shared.ops.diagnose.runs import runs_section
from shared.ops.health import run_concurrently

SECTIONS = ("health", "runs", "database", "prometheus", "permissions", "memory")
_SECONDS_GRACE = 1.0  # the outer timeout lets a check's own timeouts fire first, with their own words


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
    register_secrets(settings.secret_values())
    checks = {
        "health": lambda: health_section(settings, now),
        "runs": lambda: runs_section(settings, runs, now),
        "database": lambda: database_section(settings, timeout_seconds),
        "prometheus": lambda: prometheus_section(settings, timeout_seconds),
        "permissions": lambda: permissions_section(settings, timeout_seconds),
        "memory": lambda: memory_section(settings, cgroup_root),
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


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by its variable name; secrets (and so their `*_FILE` contents) masked, URL credentials too."""
    shown: dict[str, Any] = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            value = MASK
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(item) for item in value]  # names, or matchers as PromQL
        if isinstance(value, str):
            value = redact(value)
        shown[name.upper()] = value
    return shown
