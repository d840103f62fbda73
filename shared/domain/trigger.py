"""What started a run: a CloudEvent, a plain HTTP call, the CLI or `serve`'s schedule.

A fact of the domain, whatever the transport: runs store its kind, and the event identity is what
drops at-least-once redeliveries. Turning an HTTP request into one is the entry layer's job
(shared/entry/triggers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trigger:
    """How a run was started, and the event identity used to drop redeliveries."""

    kind: str  # "cloudevent", "http", "cli", "schedule"
    data: dict[str, Any] = field(default_factory=dict)
    event_source: str | None = None
    event_id: str | None = None
    event_type: str | None = None
