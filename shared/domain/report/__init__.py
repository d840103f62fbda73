"""The report: per container, workload, namespace and cluster, what is requested against what is used.

- query.py: what is asked (window, filters, order, limit), parsed from query parameters or options;
- figures.py: one container's figures over the window, and totals of groups of containers;
- flags.py: risk flags (OOM-killed, throttled, memory near its limit, no requests, no limits);
- explained.py: a listed container with its recommendation (shared/domain/rightsizing.py) and the
  reason behind every figure;
- build.py: the Report, from the window's usage (shared/store/window_usage.py);
- output.py: JSON and CSV; page.py and charts.py: the HTML page (templates/) with SVG charts;
- summary.py: the demo's one-screen summary of the default report.

The terminal table is `k8s-monitor report`'s (shared/cli/report.py).
"""
