"""report: the stored history as a report (JSON, CSV, or an HTML page with charts); read-only GET."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry import report as entry

if TYPE_CHECKING:
    import flask

    from shared.entry.http import AnyAnswer


@functions_framework.http
def report(request: "flask.Request") -> "AnyAnswer":
    """Serve the stored history as JSON, CSV or HTML, as the query string asks; read-only."""
    return entry.report(request)
