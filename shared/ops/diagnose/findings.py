"""What a diagnose check says: a verdict for its section, the findings behind it, and what to do about each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, PROBLEM, UNAVAILABLE = "ok", "problem", "unavailable"


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


