"""Driving the functions as their callers do: over HTTP with a client timeout, and as the CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from tests.conftest import FakeClock
from tests.support.servers import REPO

CLIENT_TIMEOUT_SECONDS = 15  # far above any check timeout: a hung /health fails the test, not the suite


def health_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a health function pointed at what `settings` points at."""
    env = {
        "DATABASE_PATH": str(settings.database_path),
        "KUBECONFIG": str(settings.kubeconfig),
        "PROMETHEUS_URL": settings.prometheus_url,
        "NAMESPACES_INCLUDE": "",
        "LOG_FORMAT": "json",
        "HEALTH_CHECK_TIMEOUT_SECONDS": "2",
        "CLUSTER_NAME": settings.cluster_name,
    }
    if settings.database_url is not None:  # the test's PostgreSQL database
        env["DATABASE_URL"] = settings.database_url.get_secret_value()
    return {**env, **overrides}


def collect_now(settings: Settings, clock: FakeClock, runs: int = 1) -> None:
    """Collections stamped at the present, as the collect function would have stored them."""
    clock.now = time.time() - settings.collect_interval_seconds * (runs - 1)
    for _ in range(runs):
        body, status = collect_once(settings, Trigger("cli"), clock=clock)
        assert status == 200, body
        clock.advance(settings.collect_interval_seconds)
    clock.now = time.time()


def get(url: str) -> requests.Response:
    """A GET that closes its connection: gunicorn waits out kept-alive connections when it stops."""
    return requests.get(url, timeout=CLIENT_TIMEOUT_SECONDS, headers={"Connection": "close"})


def post(url: str, **kwargs: object) -> requests.Response:
    return requests.post(url, timeout=CLIENT_TIMEOUT_SECONDS, headers={"Connection": "close"}, **kwargs)


def k8s_monitor(args: list[str], env: dict[str, str], wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m shared ARGS` (the k8s-monitor command) from the repository, with `env` added."""
    return subprocess.run([*(wrap or []), sys.executable, "-m", "shared", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO), **env})
