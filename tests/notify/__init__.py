"""Tests of shared/notify: Slack, email, webhook delivery and CloudEvents."""
