"""`k8s-monitor notify-test`: one test message to every configured channel, whatever the routing.

Run it after setting SLACK_WEBHOOK_URL, SMTP_* or WEBHOOK_URL, to see each channel answer before a
real alert depends on it. Attempts are recorded like any other notification.
"""

from __future__ import annotations

import argparse
import time

from shared.cli import cli_settings
from shared.core.settings import CHANNELS
from shared.domain.alerts.model import Alert
from shared.notify.message import AlertGroup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor notify-test`."""
    parser.add_argument("--channel", action="append", choices=CHANNELS,
                        help="test only this channel (repeatable); default: every configured one")


def run(args: argparse.Namespace) -> int:
    """Send the test message; exit 1 when a wanted channel is not configured or its delivery failed."""
    from shared.notify.delivery import retry_policy
    from shared.notify.dispatch import send_one
    from shared.notify.routing import configured_channels
    from shared.store.connection import open_store

    settings = cli_settings()
    channels = configured_channels(settings)
    wanted = args.channel or list(channels)
    missing = [name for name in wanted if name not in channels]
    if not channels or missing:
        what = ", ".join(missing) if missing else "none"
        print(f"k8s-monitor notify-test: channel not configured: {what}; set SLACK_WEBHOOK_URL, WEBHOOK_URL, "
              f"or SMTP_HOST with SMTP_FROM and SMTP_TO")
        return 1
    group = test_group(time.time())
    policy = retry_policy(settings)
    conn = open_store(settings)
    failed = 0
    try:
        for name in wanted:
            outcome = send_one(channels[name], group, policy, conn, "notify-test", time.time, time.sleep, None)
            detail = f" ({outcome.error})" if outcome.error else ""
            print(f"{name}: {outcome.status}{detail}")
            failed += not outcome.ok
    finally:
        conn.close()
    return 1 if failed else 0


def test_group(now: float) -> AlertGroup:
    """One info alert that says it is a test."""
    alert = Alert(name="NotifyTest", severity="info", labels={"alertname": "NotifyTest", "severity": "info"},
                  summary="test notification from k8s-monitor notify-test",
                  description="If you read this, alerts reach this channel. Nothing is wrong.", starts_at=now)
    return AlertGroup("info", (alert,))
