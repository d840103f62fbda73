"""Real servers for the tests: the functions-framework server and a real Prometheus, on loopback.

Each helper picks a free port, waits until the server answers, and stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"server for {url} did not answer within {timeout}s")


@contextmanager
def function_server(name: str, env: dict[str, str], log_path: Path | None = None) -> Iterator[str]:
    """Run `functions-framework --source functions/<name>/main.py --target <name>`; yield its URL."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "THREADS": "4", **env}
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(open(log_path, "wb")) if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [str(BIN / "functions-framework"), "--source", f"functions/{name}/main.py", "--target", name,
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        stack.callback(stop_process, process)
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process)
        yield url


def prometheus_available() -> bool:
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def real_prometheus(openmetrics_file: Path) -> Iterator[str]:
    """Backfill `openmetrics_file` with promtool and serve it from a real Prometheus; yield its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
    try:
        data = workdir / "data"
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_file), str(data)],
                       check=True, capture_output=True)
        config = workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 60s\nscrape_configs: []\n")
        port = free_port()
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/-/ready", process)
            deadline = time.monotonic() + 20
            while requests.get(f"{url}/-/ready", timeout=1).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
