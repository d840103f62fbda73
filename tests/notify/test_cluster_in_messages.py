"""The cluster in what people read: Slack titles, email subjects and bodies, the collection event."""

from __future__ import annotations

from shared.domain.alerts.model import Alert
from shared.notify.email import email_message
from shared.notify.message import cluster_of, group_by_severity
from shared.notify.slack import slack_payload


def _alert(name: str, **labels: str) -> Alert:
    return Alert(name, "critical", {"alertname": name, "severity": "critical", **labels}, f"{name} happened", "",
                 1_795_000_000.0)


def test_a_group_is_about_its_alerts_common_cluster_else_this_one() -> None:
    ours = group_by_severity([_alert("A", cluster="prod-eu"), _alert("B", cluster="prod-eu")])[0]
    mixed = group_by_severity([_alert("A", cluster="prod-eu"), _alert("B", cluster="prod-us")])[0]
    unlabelled = group_by_severity([_alert("A")])[0]

    assert cluster_of(ours, "fallback") == "prod-eu"
    assert cluster_of(mixed, "fallback") == "fallback"
    assert cluster_of(unlabelled, "fallback") == "fallback"


def test_slack_title_and_fallback_and_email_subject_and_body_name_the_cluster() -> None:
    group = group_by_severity([_alert("CollectionFailing", cluster="prod-eu")])[0]

    slack = slack_payload(group, "prod-eu")
    mail = email_message(group, "monitor@example.com", ("oncall@example.com",), 1_795_000_000.0, "prod-eu")

    assert slack["blocks"][0]["text"]["text"] == "CRITICAL: 1 firing in prod-eu — CollectionFailing"
    assert slack["text"].startswith("[k8s-resource-monitor] CRITICAL: 1 firing in prod-eu: CollectionFailing")
    assert mail["Subject"] == "[k8s-resource-monitor] CRITICAL: 1 firing in prod-eu — CollectionFailing"
    assert "[k8s-resource-monitor] CRITICAL: 1 firing in prod-eu" in mail.get_body(("plain",)).get_content()
    assert "CRITICAL: 1 firing in prod-eu" in mail.get_body(("html",)).get_content()
