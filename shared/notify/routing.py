"""Which channels exist (those configured) and which of them each severity goes to.

ALERT_ROUTE_CRITICAL, ALERT_ROUTE_WARNING and ALERT_ROUTE_INFO list channels by name; a severity
outside those three (Alertmanager rules may say `error` or `page`) takes the warning route. A routed
channel that is not configured is skipped, so the defaults work with only Slack set up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from shared.core.deadline import Deadline
from shared.core.logs import register_secrets
from shared.core.settings import Settings
from shared.notify.delivery import Attempt, post, request_timeout
from shared.notify.email import email_message, send_email
from shared.notify.message import AlertGroup, cluster_of
from shared.notify.slack import slack_payload
from shared.notify.webhook import webhook_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Channel:
    """A configured destination: its name and how to make one attempt to send a group there."""

    name: str
    send: Callable[[AlertGroup], Attempt]


def configured_channels(
    settings: Settings, clock: Callable[[], float] = time.time, deadline: Deadline | None = None,
) -> dict[str, Channel]:
    """The channels whose settings are present, by name; their requests end by `deadline` when given."""

    def timeout() -> float:
        return request_timeout(settings.notify_timeout_seconds, deadline)

    channels: dict[str, Channel] = {}
    slack_url, webhook_url = secret_text(settings.slack_webhook_url), secret_text(settings.webhook_url)
    register_secrets([slack_url, webhook_url])
    if slack_url:
        channels["slack"] = Channel("slack", lambda group: post(
            slack_url, timeout(), payload=slack_payload(group, cluster_of(group, settings.cluster_name)),
            expect_body="ok"))
    if webhook_url:
        channels["webhook"] = Channel(
            "webhook", lambda group: post(webhook_url, timeout(), payload=webhook_payload(group)))
    if settings.smtp_host:
        missing = [name for name, value in (("SMTP_FROM", settings.smtp_from), ("SMTP_TO", settings.smtp_to))
                   if not value]
        if missing:
            log.warning("email is off: SMTP_HOST is set but %s %s not", " and ".join(missing),
                        "is" if len(missing) == 1 else "are")
        else:
            sender, recipients = settings.smtp_from or "", settings.smtp_to
            channels["email"] = Channel("email", lambda group: send_email(
                settings, email_message(group, sender, recipients, clock(), cluster_of(group, settings.cluster_name)),
                timeout()))
    return channels


def secret_text(value: SecretStr | None) -> str | None:
    """The secret's text; None when unset or empty (an empty variable in a manifest means "off")."""
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None


def route(severity: str, settings: Settings) -> tuple[str, ...]:
    """Channel names for a severity, in the configured order."""
    routes = {"critical": settings.alert_route_critical, "warning": settings.alert_route_warning,
              "info": settings.alert_route_info}
    return routes.get(severity, settings.alert_route_warning)
