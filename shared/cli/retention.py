"""`k8s-monitor retention`: roll up samples past RETENTION_RAW_DAYS and delete data past its retention now.

Each collection already runs a pass bounded by RETENTION_BUDGET_SECONDS; this runs one to the end,
for example after lowering a retention setting.
"""

from __future__ import annotations

import argparse
import json

from shared.cli import cli_settings
from shared.store.retention import apply_retention


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `k8s-monitor retention`."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run retention to the end; exit code 0, also when skipped because another pass is running."""
    settings = cli_settings()
    result = apply_retention(settings)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    if result.skipped:
        print("retention skipped: another retention pass is running")
        return 0
    print(f"retention done in {result.seconds:.2f}s: {result.hours_rolled_up} hours rolled up "
          f"({result.rollup_rows} rollup rows); deleted {result.samples_deleted} samples, "
          f"{result.node_samples_deleted} node samples, {result.rollups_deleted} rollups, {result.runs_deleted} runs, "
          f"{result.spans_deleted} container spans, {result.pods_deleted} pods, "
          f"{result.containers_deleted} containers, {result.workloads_deleted} workloads, {result.nodes_deleted} nodes")
    return 0
