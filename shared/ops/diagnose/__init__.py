"""`diagnose`: every fact needed to tell why the monitor misbehaves, checked at once and packed in one archive.

An operator who opens an issue (or helps a colleague) needs the same things every time: version and
settings, the health report, the last runs with their errors and timings, the database's state,
whether Prometheus has the metrics the collector queries, and whether RBAC lets the collector do
each of its API calls. Each check runs in its own thread under one timeout and says what to do
when something is wrong. A part that is down (no cluster, no Prometheus, no database) is reported
as such: the diagnosis of a broken monitor must not break with it.

- `findings`: what a check says (a Section of Findings, each with its fix).
- `diagnosis`: every check run at once, and the verdict the command prints.
- one module per check: `health`, `runs`, `database`, `prometheus`, `permissions`, `memory`.
- `archive`: the `.tar.gz` an operator attaches to an issue, secrets masked.
"""
