"""health: /health, /health/liveness, /health/readiness and /metrics, one Service routed by path."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry import health as entry

if TYPE_CHECKING:
    import flask

    from shared.entry.http import AnyAnswer


@functions_framework.http
def health(request: "flask.Request") -> "AnyAnswer":
    """Route by path: liveness, readiness, full health, or Prometheus metrics text."""
    return entry.health(request)
