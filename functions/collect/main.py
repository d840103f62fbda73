"""collect: one collection run, from a PingSource CloudEvent or a plain HTTP POST."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry import collect as entry

if TYPE_CHECKING:
    import flask

    from shared.entry.http import AnyAnswer


@functions_framework.http
def collect(request: "flask.Request") -> "AnyAnswer":
    """Run one collection; the run summary as JSON, non-2xx when it failed or was refused."""
    return entry.collect(request)
