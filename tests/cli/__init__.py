"""Tests of the `k8s-monitor` commands."""
