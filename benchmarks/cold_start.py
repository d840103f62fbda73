"""Cold start of every function: module import time, and process start to first HTTP answer.

Under scale-to-zero a request waits for the container's process to start and import its function,
so these figures are what the first caller after idle pays. For each `functions/<name>/main.py`:

- import: seconds to load the module the way functions-framework does (median of --runs fresh
  interpreters), with the heaviest imports from `python -X importtime`, and whether the Kubernetes
  client or requests were imported;
- first answer: seconds from starting `functions-framework --source ... --target <name>` to the
  first answer of a request that needs no dependency (`/health/liveness` for health, `/metrics`
  for the others), median of --runs.

Usage: python benchmarks/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MARK = "--- function import starts ---"
HEAVY = ("shared.sources.kube", "requests")  # the Kubernetes client and requests

_LOAD = f"""
import importlib.util, json, sys, time
print({MARK!r}, file=sys.stderr, flush=True)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "loaded": [name for name in {HEAVY!r} if name in sys.modules]}}))
"""


def function_names() -> list[str]:
    return sorted(path.parent.name for path in (REPO / "functions").glob("*/main.py"))


def isolated_env(workdir: Path) -> dict[str, str]:
    """Settings that point nowhere real: a cold start must not depend on a dependency answering."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_PATH": str(workdir / "k8s_metrics.db"),
        "BACKUP_DIR": str(workdir / "backups"),
        "KUBECONFIG": str(workdir / "missing-kubeconfig"),
        "PROMETHEUS_URL": "http://127.0.0.1:9",
        "THREADS": "4",
    }


def measure_import(name: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """Seconds to load the function module in a fresh interpreter, and which heavy modules it loaded."""
    done = subprocess.run([sys.executable, "-c", _LOAD, f"functions/{name}/main.py"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["loaded"]


def heaviest_imports(name: str, env: dict[str, str], top: int = 5) -> list[tuple[str, float]]:
    """The top-level imports of the function module that cost most (cumulative seconds)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _LOAD, f"functions/{name}/main.py"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=True)
    lines = done.stderr.split(MARK, 1)[-1].splitlines()
    costs = []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, module = line.split("|")
        if module.startswith("  ") or not cumulative.strip().isdigit():
            continue  # nested: already counted in its parent's cumulative time
        costs.append((module.strip(), int(cumulative) / 1e6))
    return sorted(costs, key=lambda item: item[1], reverse=True)[:top]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_first_answer(name: str, env: dict[str, str]) -> float:
    """Seconds from process start to the first HTTP answer of a dependency-free request."""
    port = free_port()
    path = "/health/liveness" if name == "health" else "/metrics"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(BIN / "functions-framework"), "--source", f"functions/{name}/main.py", "--target", name,
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name}: functions-framework exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                    response.read()
                return time.perf_counter() - started
            except urllib.error.HTTPError:
                return time.perf_counter() - started  # an answer all the same
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"{name}: no answer on {path} within 30 s")
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure (median reported)")
    args = parser.parse_args()
    names = function_names()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.runs} runs; "
          f"functions: {', '.join(names)}\n")
    print(f"{'function':<14}{'import s':>9}{'first answer s':>16}  heavy modules loaded")
    details = []
    with tempfile.TemporaryDirectory(prefix="cold-start-") as workdir:
        env = isolated_env(Path(workdir))
        for name in names:
            imports = [measure_import(name, env) for _ in range(args.runs)]
            answers = [measure_first_answer(name, env) for _ in range(args.runs)]
            loaded = sorted({module for _, modules in imports for module in modules})
            print(f"{name:<14}{statistics.median(s for s, _ in imports):>9.3f}"
                  f"{statistics.median(answers):>16.3f}  {', '.join(loaded) or 'none'}")
            details.append((name, heaviest_imports(name, env)))
    print("\nHeaviest top-level imports (python -X importtime, cumulative):")
    for name, costs in details:
        print(f"  {name}: " + ", ".join(f"{module} {seconds:.3f}s" for module, seconds in costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
