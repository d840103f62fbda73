"""The health function's routes: /health (`?cluster=NAME` for another cluster of a shared PostgreSQL store),
/health/liveness, /health/readiness and /metrics.

Imports nothing that talks to Kubernetes or Prometheus at start: the full check imports its
clients when it runs, so liveness answers fast after a scale from zero.
"""

from __future__ import annotations

from typing import Any

from shared.core.settings import Settings
from shared.entry.http import AnyAnswer, http_function, json_answer
from shared.entry.triggers import BadRequest
from shared.ops.health import check_health, check_readiness
from shared.ops.metrics import HTTP_REGISTRY, DatabaseCollector, metrics_answer

ROUTES = ("/health", "/health/liveness", "/health/readiness", "/metrics")


@http_function("health", routes=ROUTES)
def health(request: Any, settings: Settings) -> AnyAnswer:
    """Route by path: liveness, readiness (503 when not ready), full health, or Prometheus metrics text."""
    path = request.path.rstrip("/") or "/"
    if path not in ROUTES:
        raise BadRequest(f"no such endpoint {path}; this function serves {', '.join(ROUTES)}", 404)
    if request.method not in ("GET", "HEAD"):
        raise BadRequest(f"method {request.method} not allowed on {path}; use GET", 405)
    if path == "/health/liveness":
        return json_answer({"status": "alive"})
    if path == "/health/readiness":
        ready = check_readiness(settings)
        body = {**ready.as_dict(), "status": "ready" if ready.error is None else "not ready"}
        return json_answer(body, 200 if ready.error is None else 503)
    if path == "/metrics":
        return metrics_answer(HTTP_REGISTRY, DatabaseCollector(settings), cluster=settings.cluster_name)
    cluster = request.args.get("cluster") or None  # PostgreSQL: another cluster's data and collections
    report = check_health(settings, cluster=cluster)
    return json_answer(report.as_dict(), report.http_status)
