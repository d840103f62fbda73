"""What alert_notify accepts, validated: Alertmanager's webhook (version 4) and our alert CloudEvents.

Both carry alerts in Alertmanager's shape (status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint), so one model reads both. A payload that does not fit is refused with a
message naming the field, before anything is sent or stored.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.domain.alerts.model import Alert, fingerprint
from shared.domain.errors import InvalidInput
from shared.notify.message import AlertGroup, group_by_severity

ALERTMANAGER_VERSION = "4"
Model = TypeVar("Model", bound=BaseModel)
_MAX_ALERTS = 10_000


class IncomingAlert(BaseModel):
    """One alert as Alertmanager (and our events) send it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""

    def to_alert(self) -> Alert:
        """Our Alert; Alertmanager's zero time ("0001-01-01T00:00:00Z") means no end yet."""
        name = self.labels.get("alertname", "unnamed")
        notes = self.annotations
        ends_at = self.ends_at.timestamp() if self.ends_at is not None and self.ends_at.year > 1 else None
        return Alert(
            name=name, severity=self.labels.get("severity", "warning").lower(), labels=dict(self.labels),
            summary=notes.get("summary") or notes.get("message") or notes.get("title") or name,
            description=notes.get("description", ""), starts_at=self.starts_at.timestamp(), ends_at=ends_at,
            status=self.status, generator_url=self.generator_url or None,
            fingerprint=self.fingerprint or fingerprint(self.labels),
        )


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[IncomingAlert] = Field(min_length=1, max_length=_MAX_ALERTS)


class AlertEventData(BaseModel):
    """The data of our `dev.k8smonitor.alert.firing` / `.resolved` CloudEvents."""

    model_config = ConfigDict(extra="ignore")

    alerts: list[IncomingAlert] = Field(min_length=1, max_length=_MAX_ALERTS)


def alertmanager_groups(body: dict) -> tuple[list[AlertGroup], str]:
    """The groups to send for an Alertmanager webhook, and its redelivery key.

    The key hashes the group key, the status and each alert's fingerprint and status: a retry of
    the same notification has the same key.
    """
    version = body.get("version")
    if version != ALERTMANAGER_VERSION:
        shown = "no version" if version is None else f"version {version!r}"
        raise InvalidInput(f"unsupported Alertmanager webhook {shown}; alert_notify accepts version "
                         f"{ALERTMANAGER_VERSION} (Alertmanager 0.x webhook_configs)")
    webhook = _validate(AlertmanagerWebhook, body, "Alertmanager webhook")
    alerts = [alert.to_alert() for alert in webhook.alerts]
    parts = [webhook.group_key, webhook.status, *sorted(f"{a.fingerprint}:{a.status}" for a in alerts)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return group_by_severity(alerts, webhook.external_url or None, webhook.truncated_alerts), key


def event_groups(data: dict) -> list[AlertGroup]:
    """The groups to send for one of our alert CloudEvents."""
    event = _validate(AlertEventData, data, "alert event data")
    return group_by_severity(alert.to_alert() for alert in event.alerts)


def _validate(model: type[Model], body: dict, what: str) -> Model:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:10]:
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise InvalidInput(f"invalid {what}: " + "; ".join(problems)) from None
