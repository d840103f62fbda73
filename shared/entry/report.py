"""The report function's work behind its HTTP edge: read the query, choose the format, answer.

`GET /` (or `/report`) answers the report as JSON, CSV, the HTML page or YAML patches; `cluster=NAME`
reports another cluster of a shared PostgreSQL store. `GET /fleet` (or `view=fleet`) answers one row
per cluster, as JSON or a page. The `format` parameter (`json`, `csv`, `html`, `patch`) decides;
without it the Accept header does: a browser (text/html first) gets the page, anything else (curl,
scripts) JSON. Without `limit`, JSON lists 100 containers, CSV and patches every one; the page shows
50 rows a page (a workload's view 10 containers with their charts) and pages through the rest
(shared/domain/report/page.py). The database is opened read-only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.core.settings import Settings
from shared.domain.report.build import build_report
from shared.domain.report.output import FORMATS, report_csv, report_json, report_patches
from shared.domain.report.query import parse_report_query
from shared.entry.http import Answer, http_function, json_answer
from shared.entry.triggers import BadRequest
from shared.store.connection import StoreError, open_store, store_clusters
from shared.store.snapshot import read_snapshot

DEFAULT_LIMITS: dict[str, int | None] = {"json": 100, "csv": None, "patch": None}
PATHS = ("", "/report", "/fleet")


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
    if request.path.rstrip("/") == "/fleet" or params.get("view") == "fleet":
        return _fleet(params, settings, fmt, now)
    cluster = params.pop("cluster", None)
    settings = for_cluster(settings, cluster)
    if fmt == "html":
        return _page(params, settings, now, cluster)
    query = parse_report_query(params, settings, now, DEFAULT_LIMITS[fmt], extra=("format",))
    try:
        conn = open_store(settings, readonly=True)
    except StoreError as exc:
        return json_answer({"error": str(exc)}, 503)
    try:
        report = build_report(conn, query, settings, now)
    finally:
        conn.close()
    if fmt == "patch":
        return report_patches(report), 200, {"Content-Type": "application/yaml; charset=utf-8"}
    if fmt == "csv":
        filename = f"k8s-resource-report-{query.window.label}.csv"
        return report_csv(report), 200, {"Content-Type": "text/csv; charset=utf-8",
                                         "Content-Disposition": f'attachment; filename="{filename}"'}
    return json_answer(report_json(report))


def for_cluster(settings: Settings, cluster: str | None) -> Settings:
    """The settings of `cluster` (the `cluster` parameter) in the store, or a 404 naming those it holds."""
    if not cluster or cluster == settings.cluster_name:
        return settings
    try:
        known = store_clusters(settings)
    except (StoreError, sqlite3.Error) as exc:
        raise BadRequest(str(exc), 503) from None
    if cluster not in known:
        raise BadRequest(f"cluster: {cluster[:100]!r} has no data in this store; it holds {', '.join(known) or 'none'}",
                         404)
    return settings.model_copy(update={"cluster_name": cluster})


def _fleet(params: dict[str, str], settings: Settings, fmt: str, now: float) -> Answer:
    """One row per cluster (stale first) as JSON, or the fleet page; `window` as for a report."""
    from shared.domain.report.fleet import build_fleet, render_fleet_page

    params = {name: value for name, value in params.items() if name not in ("view", "format")}
    query = parse_report_query(params, settings, now, None)
    try:
        fleet = build_fleet(settings, query, now)
    except (StoreError, sqlite3.Error) as exc:
        return json_answer({"error": str(exc)}, 503)
    if fmt == "html":
        from shared.domain.report.assets import content_security_policy

        return render_fleet_page(fleet), 200, {
            "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": content_security_policy(),
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if fmt == "csv":
        raise BadRequest("format: the fleet is JSON or HTML", 400)
    return json_answer(fleet.as_dict())


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


def _page(params: dict[str, str], settings: Settings, now: float, cluster: str | None) -> Answer:
    """The page of the view the filters ask for: the report of every selected container (the page
    sorts and pages them itself), and the charts of the containers it shows, from one snapshot. Its
    links keep `cluster`, the cluster asked for (the fleet page's links)."""
    from shared.domain.report.assets import content_security_policy
    from shared.domain.report.links import PAGE_PARAMETERS
    from shared.domain.report.page import (
        PAGE_SIZES,
        containers_to_list,
        page_view,
        parse_page_request,
        render_page,
    )
    from shared.store.usage_series import data_span, series_step, usage_series

    query = parse_report_query(params, settings, now, PAGE_SIZES[page_view(params)], extra=PAGE_PARAMETERS)
    request = parse_page_request(params, query.sort)
    try:
        conn = open_store(settings, readonly=True)
    except StoreError as exc:
        return json_answer({"error": str(exc)}, 503)
    window = query.window

    def load_series(container_ids: list[int]) -> dict:
        step = series_step(data_span(conn, container_ids, window), settings.collect_interval_seconds)
        return usage_series(conn, container_ids, window, step)

    try:
        with read_snapshot(conn):  # the figures and the charts of one committed state
            report = build_report(conn, replace(query, limit=containers_to_list(request)), settings, now)
            namespaces = [row[0] for row in conn.execute("SELECT DISTINCT namespace FROM workloads ORDER BY 1")]
            max_days = max(settings.retention_hourly_days, settings.retention_raw_days)
            body = render_page(report, request, {**params, "cluster": cluster or ""}, namespaces, query.limit,
                               max_days, load_series, settings.collect_interval_seconds)
    finally:
        conn.close()
    return body, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": content_security_policy(),
                       "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
