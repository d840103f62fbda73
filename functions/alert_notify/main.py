"""alert_notify: our alert CloudEvents and Alertmanager webhooks (version 4) in, Slack/email/webhook out."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry.alert_notify import notify_from_http
from shared.entry.http import Answer, handles_errors, json_answer, start_function

if TYPE_CHECKING:
    import flask

SETTINGS = start_function("alert_notify")


@functions_framework.http
@handles_errors("alert_notify")
def alert_notify(request: "flask.Request") -> Answer | tuple[str, int]:
    """Deliver one alert batch: an empty 204 when delivered (or already handled), JSON naming the failures otherwise."""
    status, body = notify_from_http(request, SETTINGS)
    if body is None:
        return "", status
    return json_answer(body, status)
