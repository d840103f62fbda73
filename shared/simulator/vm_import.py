"""The scenario's cAdvisor history as VictoriaMetrics' JSON line import (`POST /api/v1/import`).

One line per series, `{"metric": {"__name__": ..., labels}, "values": [...], "timestamps": [ms, ...]}`:
the same samples `write_openmetrics` gives promtool, so a test can hold one history in both stores
and compare what each answers to the same query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from shared.simulator.cadvisor import MetricNames, cadvisor_series, with_copies
from shared.simulator.scenario import Scenario


def vm_import_lines(scenario: Scenario, start: int, end: int, step: int = 60, names: MetricNames = MetricNames(),
                    copies: tuple[dict[str, str], ...] = ({},)) -> Iterator[bytes]:
    """One JSON line per series of the running pods, sampled at start, start+step, ... <= end (seconds)."""
    if step <= 0 or end < start:
        raise ValueError(f"need step > 0 and end >= start, got start={start} end={end} step={step}")
    for one in with_copies(cadvisor_series(scenario, names), copies):
        timestamps, values = [], []
        for t in range(start, end + 1, step):
            value = one.sample(float(t))
            if value is not None:
                timestamps.append(t * 1000)
                values.append(value)
        if timestamps:
            line = {"metric": {"__name__": one.metric, **one.labels}, "values": values, "timestamps": timestamps}
            yield json.dumps(line, separators=(",", ":")).encode() + b"\n"
