"""Keeping the monitor itself healthy: health checks, self-metrics, backup, restore, diagnose."""
