"""Telling people about alerts: messages built per channel (Slack, email, JSON webhook), routed by
severity, and delivered with bounded retries, every attempt recorded."""
