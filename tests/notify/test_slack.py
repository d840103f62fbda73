"""Slack messages stay inside Slack's limits and show alerts escaped, whatever the alerts hold."""

from __future__ import annotations

from shared.domain.alerts.model import Alert
from shared.notify.message import AlertGroup, group_by_severity
from shared.notify.slack import MAX_BLOCKS, MAX_HEADER_CHARS, MAX_SECTION_CHARS, escape, slack_payload, truncate


def _alert(index: int = 0, severity: str = "warning", description: str = "", status: str = "firing",
           **labels: str) -> Alert:
    labels = {"alertname": "CPUThrottled", "severity": severity, "namespace": "shop", "workload_kind": "Deployment",
              "workload": f"api-{index}", "container": "api", **labels}
    return Alert("CPUThrottled", severity, labels, f"api-{index} is throttled 40% of the time", description,
                 1_767_225_600.0, 1_767_229_200.0 if status == "resolved" else None, status)


def _sections(payload: dict) -> list[str]:
    return [block["text"]["text"] for block in payload["blocks"] if block["type"] == "section"]


def test_one_alert_shows_state_name_summary_labels_and_time():
    payload = slack_payload(AlertGroup("warning", (_alert(),)))
    assert payload["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "WARNING: 1 firing — CPUThrottled", "emoji": True}}
    [section] = _sections(payload)
    assert section.startswith(":large_orange_circle: *FIRING* *CPUThrottled* — api-0 is throttled 40% of the time")
    assert "`namespace=shop` `workload=api-0`" in section
    assert "since 2026-01-01 00:00 UTC" in section
    assert payload["text"] == ("[k8s-resource-monitor] WARNING: 1 firing: CPUThrottled "
                               "shop/Deployment/api-0 api")


def test_markup_characters_in_alerts_are_escaped():
    alert = _alert(description="limit <1Gi> & request <512Mi>", container="a&b")
    section = _sections(slack_payload(AlertGroup("warning", (alert,))))[0]
    assert "limit &lt;1Gi&gt; &amp; request &lt;512Mi&gt;" in section
    assert "`container=a&amp;b`" in section
    assert "<1Gi>" not in section


def test_links_keep_their_markup_and_escape_their_text():
    alert = Alert("X", "critical", {"alertname": "X", "severity": "critical"}, "s", "", 0.0,
                  generator_url="http://prometheus:9090/graph?g0.expr=up&g0.tab=1")
    group = AlertGroup("critical", (alert,), external_url="http://alertmanager:9093")
    payload = slack_payload(group)
    assert "<http://prometheus:9090/graph?g0.expr=up&amp;g0.tab=1|source>" in _sections(payload)[0]
    assert "<http://alertmanager:9093|open>" in payload["blocks"][-1]["elements"][0]["text"]


def test_long_description_is_cut_to_the_section_limit():
    section = _sections(slack_payload(AlertGroup("warning", (_alert(description="&" * 5000),))))[0]
    assert len(section) <= MAX_SECTION_CHARS
    assert section.endswith("&amp;…")  # never half an entity


def test_two_hundred_alerts_fit_in_fifty_blocks_and_say_how_many_are_left_out():
    group = AlertGroup("warning", tuple(_alert(i) for i in range(200)), truncated=5)
    payload = slack_payload(group)
    assert len(payload["blocks"]) == MAX_BLOCKS
    assert len(_sections(payload)) == MAX_BLOCKS - 2
    footer = payload["blocks"][-1]["elements"][0]["text"]
    assert footer == "k8s-resource-monitor · 157 more alerts not shown"
    assert len(payload["blocks"][0]["text"]["text"]) <= MAX_HEADER_CHARS
    assert len(payload["text"]) <= 3000


def test_resolved_alerts_are_marked_and_show_when_they_ended():
    group = AlertGroup("warning", (_alert(0), _alert(1, status="resolved")))
    first, second = _sections(slack_payload(group))
    assert "*FIRING*" in first
    assert second.startswith(":white_check_mark: *RESOLVED*")
    assert "resolved 2026-01-01 01:00 UTC" in second


def test_groups_are_one_per_severity_most_severe_first():
    alerts = [_alert(0, "warning"), _alert(1, "critical"), _alert(2, "page"), _alert(3, "warning", status="resolved"),
              _alert(4, "info")]
    groups = group_by_severity(alerts)
    assert [g.severity for g in groups] == ["critical", "warning", "info", "page"]
    assert [a.labels["workload"] for a in groups[1].alerts] == ["api-0", "api-3"]


def test_escape_and_truncate_helpers():
    assert escape("<a href='x'>&</a>") == "&lt;a href='x'&gt;&amp;&lt;/a&gt;"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"
