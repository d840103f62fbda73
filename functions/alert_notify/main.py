"""alert_notify: our alert CloudEvents and Alertmanager webhooks (version 4) in, Slack/email/webhook out."""

import functions_framework

from shared.http import handles_errors, json_answer, start_function
from shared.notify.endpoint import notify_from_http

SETTINGS = start_function("alert_notify")


@functions_framework.http
@handles_errors("alert_notify")
def alert_notify(request):  # type: ignore[no-untyped-def]
    status, body = notify_from_http(request, SETTINGS)
    if body is None:
        return "", status
    return json_answer(body, status)
