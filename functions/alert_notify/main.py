"""alert_notify: our alert CloudEvents and Alertmanager webhooks (version 4) in, Slack/email/webhook out."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry import alert_notify as entry

if TYPE_CHECKING:
    import flask

    from shared.entry.http import AnyAnswer


@functions_framework.http
def alert_notify(request: "flask.Request") -> "AnyAnswer":
    """Deliver one alert batch: an empty 204 when delivered (or already handled), JSON naming the failures otherwise."""
    return entry.alert_notify(request)
