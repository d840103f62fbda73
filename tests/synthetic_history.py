"""The synthetic history helpers for the tests that still import them from here (benchmarks/synthetic.py)."""

from benchmarks.synthetic import store_synthetic_run, synthetic_inventory, synthetic_usage

__all__ = ["store_synthetic_run", "synthetic_inventory", "synthetic_usage"]
