"""Alerts about the monitored cluster and the monitor itself: what an alert is, the rules that raise them, their state.

Rules read the database, not the cluster: they run after every collection on what that run stored.
State lives in the `alerts` table, keyed by a fingerprint of the labels, so people are told when
an alert starts, again once per repeat interval while it fires, and once when it resolves.

- `model`: an Alert, its fingerprint and its Alertmanager shape.
- `rules`: what every rule sees (RuleContext), and the rules about collection, the database and backups.
- `container_rules`: the rules about containers (OOM kills, restarts, memory near its limit, throttling).
- `evaluation`: every built-in rule run at once, and which namespaces a run lets them judge.
- `state`: firing and resolved state, the claim of what to tell, and the listing for people.
"""
