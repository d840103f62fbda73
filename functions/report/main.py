"""report: the stored history as a report (JSON, CSV, or an HTML page with charts); read-only GET."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry.http import Answer, handles_errors, start_function
from shared.entry.report import report_from_http

if TYPE_CHECKING:
    import flask

SETTINGS = start_function("report")


@functions_framework.http
@handles_errors("report")
def report(request: "flask.Request") -> Answer:
    """Serve the stored history as JSON, CSV or HTML, as the query string asks; read-only."""
    return report_from_http(request, SETTINGS)
