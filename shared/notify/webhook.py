"""The generic JSON webhook's body: Alertmanager's webhook format (version 4), one group per POST.

Reusing that format means anything that already takes Alertmanager webhooks (a chat bridge, an
incident tool, another alert_notify) takes ours without an adapter.
"""

from __future__ import annotations

from shared.notify.message import PRODUCT, AlertGroup


def webhook_payload(group: AlertGroup) -> dict:
    """The JSON body to POST to WEBHOOK_URL."""
    alerts = [alert.as_alertmanager() for alert in group.alerts]
    common_labels = dict(set.intersection(*(set(a["labels"].items()) for a in alerts))) if alerts else {}
    return {
        "version": "4",
        "groupKey": f"{PRODUCT}:{{}}:{{severity=\"{group.severity}\"}}",
        "truncatedAlerts": group.truncated,
        "status": group.status,
        "receiver": PRODUCT,
        "groupLabels": {"severity": group.severity},
        "commonLabels": common_labels,
        "commonAnnotations": {},
        "externalURL": group.external_url or "",
        "alerts": alerts,
    }
