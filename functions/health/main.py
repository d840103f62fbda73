"""health: /health, /health/liveness, /health/readiness and /metrics, one Service routed by path.

Imports nothing that talks to Kubernetes or Prometheus at start: the full check imports its
clients when it runs, so liveness answers fast after a scale from zero.
"""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry.http import Answer, handles_errors, json_answer, start_function
from shared.entry.triggers import BadRequest
from shared.ops.health import check_health, check_readiness
from shared.ops.metrics import HTTP_REGISTRY, DatabaseCollector, metrics_answer

if TYPE_CHECKING:
    import flask

SETTINGS = start_function("health")
ROUTES = ("/health", "/health/liveness", "/health/readiness", "/metrics")


@functions_framework.http
@handles_errors("health", routes=ROUTES)
def health(request: "flask.Request") -> Answer | tuple[bytes, int, dict[str, str]]:
    """Route by path: liveness, readiness (503 when not ready), full health, or Prometheus metrics text."""
    path = request.path.rstrip("/") or "/"
    if path not in ROUTES:
        raise BadRequest(f"no such endpoint {path}; this function serves {', '.join(ROUTES)}", 404)
    if request.method not in ("GET", "HEAD"):
        raise BadRequest(f"method {request.method} not allowed on {path}; use GET", 405)
    if path == "/health/liveness":
        return json_answer({"status": "alive"})
    if path == "/health/readiness":
        ready = check_readiness(SETTINGS)
        body = {**ready.as_dict(), "status": "ready" if ready.error is None else "not ready"}
        return json_answer(body, 200 if ready.error is None else 503)
    if path == "/metrics":
        return metrics_answer(HTTP_REGISTRY, DatabaseCollector(SETTINGS.database_path))
    report = check_health(SETTINGS)
    return json_answer(report.as_dict(), report.http_status)
