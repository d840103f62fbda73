"""collect: one collection run, from a PingSource CloudEvent or a plain HTTP POST."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry.collect import collect_from_http
from shared.entry.http import Answer, handles_errors, json_answer, start_function

if TYPE_CHECKING:
    import flask

SETTINGS = start_function("collect")


@functions_framework.http
@handles_errors("collect")
def collect(request: "flask.Request") -> Answer:
    """Run one collection; the run summary as JSON, non-2xx when it failed or was refused."""
    body, status = collect_from_http(request, SETTINGS)
    return json_answer(body, status)
