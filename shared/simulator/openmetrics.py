"""The scenario's cAdvisor history as an OpenMetrics file for `promtool tsdb create-blocks-from`.

Backfilled into a real Prometheus, these samples answer the monitor's queries with the same
numbers as the simulated Prometheus API: tests use that to prove the simulator speaks real PromQL
semantics. OpenMetrics wants each family's samples together under one `# TYPE` (counters named
without `_total` there), each series' timestamps increasing, and `# EOF` at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.simulator.cadvisor import MetricNames, cadvisor_series, with_copies
from shared.simulator.scenario import Scenario


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_openmetrics(scenario: Scenario, path: str | os.PathLike[str], start: int, end: int, step: int = 60,
                      names: MetricNames = MetricNames(), copies: tuple[dict[str, str], ...] = ({},)) -> Path:
    """Write every series of the running pods, sampled at start, start+step, ... <= end (seconds).

    `copies`: label sets each series is written under (see `with_copies`), e.g. two clusters.
    """
    if step <= 0 or end < start:
        raise ValueError(f"need step > 0 and end >= start, got start={start} end={end} step={step}")
    series = with_copies(cadvisor_series(scenario, names), copies)
    counters = set(names.counters())
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for metric in dict.fromkeys(one.metric for one in series):
            family = metric.removesuffix("_total") if metric in counters else metric
            out.write(f"# TYPE {family} {'counter' if metric in counters else 'gauge'}\n")
            for one in series:
                if one.metric != metric:
                    continue
                labels = ",".join(f'{name}="{_escape(value)}"' for name, value in one.labels.items())
                prefix = f"{metric}{{{labels}}} "
                for t in range(start, end + 1, step):
                    value = one.sample(float(t))
                    if value is not None:
                        out.write(f"{prefix}{value!r} {t}\n")
        out.write("# EOF\n")
    return target
