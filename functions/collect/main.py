"""collect: one collection run, from a PingSource CloudEvent or a plain HTTP POST."""

import functions_framework

from shared.collect_entry import collect_from_http
from shared.http import handles_errors, json_answer, start_function

SETTINGS = start_function("collect")


@functions_framework.http
@handles_errors("collect")
def collect(request):  # type: ignore[no-untyped-def]
    body, status = collect_from_http(request, SETTINGS)
    return json_answer(body, status)
