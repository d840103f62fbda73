"""The report: per container, workload, namespace and cluster, what is requested against what is used.

- query.py: what is asked (window, filters, order, limit), parsed from query parameters or options;
- figures.py: one container's figures over the window, and totals of groups of containers;
- flags.py: risk flags (OOM-killed, throttled, memory near its limit, no requests, no limits);
- explained.py: a listed container with its recommendation (shared/domain/rightsizing.py) and the
  reason behind every figure;
- build.py: the Report, from the window's usage (shared/store/window_usage.py);
- output.py: JSON and CSV;
- page.py, tables.py, links.py, charts.py, extras.py, assets.py: the HTML pages (cluster, namespace, workload)
  with sortable, paged tables and SVG charts, rendered from templates/ by autoescaping Jinja2
  (shared/core/templates.py), with the stylesheet and script of static/ inlined;
- summary.py: the demo's one-screen summary of the default report.

Averages over time are over the time the window's successful runs covered
(shared/store/covered_time.py), and a report reads one snapshot of the database
(shared/store/snapshot.py).

The terminal table is `k8s-monitor report`'s (shared/cli/report.py).
"""
