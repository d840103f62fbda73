"""A real VictoriaMetrics single node (Debian's `victoria-metrics`) holding a scenario's history, on loopback.

Data goes in through its import API (`/api/v1/import`, JSON lines) and is flushed to be searchable
at once. `-search.latencyOffset=0s` lets it answer about the last seconds (by default it hides the
newest 30 s, which a history ending "now" is in); `-search.disableCache` keeps answers from one
test out of the next. Installed by `make test` (scripts/ensure-system-packages); a missing binary
fails the tests that need it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.servers import free_port, stop_process, wait_until_up


@contextmanager
def real_victoria_metrics(lines: Iterable[bytes]) -> Iterator[str]:
    """Start VictoriaMetrics, import `lines` (its JSON line format), flush; yield its URL; stop it."""
    workdir = Path(tempfile.mkdtemp(prefix="victoria-metrics-"))
    port = free_port()
    process = subprocess.Popen(
        ["victoria-metrics", f"-storageDataPath={workdir}", f"-httpListenAddr=127.0.0.1:{port}",
         "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", process)
        imported = requests.post(f"{url}/api/v1/import", data=b"".join(lines), timeout=60)
        imported.raise_for_status()
        requests.get(f"{url}/internal/force_flush", timeout=30).raise_for_status()
        yield url
    finally:
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)
