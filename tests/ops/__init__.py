"""Tests of shared/ops: health, metrics, backup, restore, diagnose."""
