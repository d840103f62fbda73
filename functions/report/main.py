"""report: the stored history as a report (JSON, CSV, or an HTML page with charts); read-only GET."""

import functions_framework

from shared.http import handles_errors, start_function
from shared.report_entry import report_from_http

SETTINGS = start_function("report")


@functions_framework.http
@handles_errors("report")
def report(request):  # type: ignore[no-untyped-def]
    return report_from_http(request, SETTINGS)
