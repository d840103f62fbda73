"""An alert as people are told about it: labels, words, times, and the fingerprint that identifies it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from shared.core.formats import iso_utc

SEVERITIES = ("critical", "warning", "info")


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of an alert: the same labels always give the same 16 hex digits."""
    text = "\x00".join(f"{key}\x01{labels[key]}" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rfc3339(seconds: float | None) -> str | None:
    """Unix seconds as an RFC 3339 UTC time (`2024-05-01T12:00:00Z`), as Alertmanager writes them; None stays None."""
    return None if seconds is None else iso_utc(seconds)


@dataclass(frozen=True)
class Alert:
    """One alert as people are told about it; `labels` include `alertname` and `severity`."""

    name: str
    severity: str
    labels: dict[str, str]
    summary: str
    description: str
    starts_at: float
    ends_at: float | None = None
    status: str = "firing"
    generator_url: str | None = None
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    @property
    def where(self) -> str:
        """`namespace/Kind/name container` for container alerts, "" for cluster-wide ones."""
        labels = self.labels
        if "workload" not in labels:
            return labels.get("namespace", "")
        place = f"{labels.get('namespace', '')}/{labels.get('workload_kind', '')}/{labels['workload']}"
        return f"{place} {labels['container']}" if labels.get("container") else place

    def as_alertmanager(self) -> dict:
        """The alert in Alertmanager's webhook shape, which our CloudEvents and webhook reuse."""
        return {
            "status": self.status, "labels": self.labels,
            "annotations": {"summary": self.summary, "description": self.description},
            "startsAt": rfc3339(self.starts_at), "endsAt": rfc3339(self.ends_at) or "0001-01-01T00:00:00Z",
            "generatorURL": self.generator_url or "", "fingerprint": self.fingerprint,
        }



def firing_alert(name: str, severity: str, now: float, summary: str, description: str, **labels: str) -> Alert:
    """A new firing alert named `name`, starting `now`; its labels are `alertname`, `severity` and `labels`."""
    return Alert(name, severity, {"alertname": name, "severity": severity, **labels}, summary, description, now)
