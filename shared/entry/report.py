"""The report function's work behind its HTTP edge: read the query, choose the format, answer.

`GET /` (or `/report`) answers the report as JSON, CSV, the HTML page or YAML patches. The `format`
parameter (`json`, `csv`, `html`, `patch`) decides; without it the Accept header does: a browser
(text/html first) gets the page, anything else (curl, scripts) JSON. Without `limit`, JSON lists 100
containers, the page 25 (each with two charts), CSV and patches every one. The database is opened
read-only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from shared.core.settings import Settings
from shared.domain.report.build import Report, build_report
from shared.domain.report.output import FORMATS, report_csv, report_json, report_patches
from shared.domain.report.query import parse_report_query
from shared.entry.http import Answer, http_function, json_answer
from shared.entry.triggers import BadRequest
from shared.store.connection import StoreError, connect
from shared.store.snapshot import read_snapshot

DEFAULT_LIMITS: dict[str, int | None] = {"json": 100, "csv": None, "html": 25, "patch": None}
PATHS = ("", "/report")


@http_function("report")
def report(request: Any, settings: Settings) -> Answer:
    """Serve the stored history as JSON, CSV or HTML, as the query string asks; read-only."""
    return report_answer(request, settings)


def report_answer(request: Any, settings: Settings, clock: Callable[[], float] = time.time) -> Answer:
    """A Flask request in, the report (or a 4xx naming the bad parameter) out."""
    if request.method not in ("GET", "HEAD"):
        raise BadRequest(f"method {request.method} not allowed; use GET", 405)
    if request.path.rstrip("/") not in PATHS:
        raise BadRequest(f"nothing at {request.path[:100]}; the report is at / (or /report)", 404)
    params = _single_values(request.args)
    fmt = choose_format(params.get("format"), request.accept_mimetypes)
    now = clock()
    query = parse_report_query(params, settings, now, DEFAULT_LIMITS[fmt], extra=("format",))
    try:
        conn = connect(settings.database_path, readonly=True)
    except StoreError as exc:
        return json_answer({"error": str(exc)}, 503)
    try:
        with read_snapshot(conn):  # the figures and the charts of one committed state
            report = build_report(conn, query, settings, now)
            if fmt == "html":
                return _page(conn, report, params, settings), 200, {"Content-Type": "text/html; charset=utf-8"}
    finally:
        conn.close()
    if fmt == "patch":
        return report_patches(report), 200, {"Content-Type": "application/yaml; charset=utf-8"}
    if fmt == "csv":
        filename = f"k8s-resource-report-{query.window.label}.csv"
        return report_csv(report), 200, {"Content-Type": "text/csv; charset=utf-8",
                                         "Content-Disposition": f'attachment; filename="{filename}"'}
    return json_answer(report_json(report))


def choose_format(requested: str | None, accept: Any) -> str:
    """The `format` parameter, else HTML for clients that prefer text/html, else JSON."""
    if requested:
        if requested not in FORMATS:
            raise BadRequest(f"format: {requested[:20]!r} is not one of {', '.join(FORMATS)}")
        return requested
    return "html" if accept.best_match(["application/json", "text/html"]) == "text/html" else "json"


def _single_values(args: Any) -> dict[str, str]:
    params = {}
    for name in args:
        values = args.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"{name[:40]}: given {len(values)} times; give it once")
        params[name] = values[0]
    return params


def _page(conn: sqlite3.Connection, report: Report, params: dict[str, str], settings: Settings) -> str:
    from shared.domain.report.page import render_page
    from shared.store.usage_series import series_step, usage_series

    step = series_step(report.query.window, settings.collect_interval_seconds)
    series = usage_series(conn, [c.container_id for c in report.containers], report.query.window, step)
    namespaces = [row[0] for row in conn.execute("SELECT DISTINCT namespace FROM workloads ORDER BY 1")]
    max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
    return render_page(report, series, namespaces, params, step, max_days)
