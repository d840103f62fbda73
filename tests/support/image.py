"""The image, emulated without a Docker engine: the Dockerfile read as Docker reads it, and a
container of a manifest run the way the kubelet would run it in that image.

The files the Dockerfile COPYs (minus what .dockerignore leaves out of the build context) are staged
in a directory standing for the image's root: WORKDIR (/app) holds the code, /usr/local/bin the
`k8s-monitor` command; this virtualenv's bin stands for the python of the image. A container then
runs its `command`/`args` (or the image's CMD under `/bin/sh -c`) in WORKDIR with only the image's
ENV, the container's env and envFrom (the ConfigMap of the build, the downward API values given),
and each volume mapped to a temporary directory.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.servers import BIN, free_port, stop_process, wait_until_up

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # comments may sit inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def instructions(keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction, in order."""
    return [arguments for kw, arguments in INSTRUCTIONS if kw == keyword]


def image_env() -> dict[str, str]:
    """Every `ENV key=value ...` of the Dockerfile, later ones winning, as the image holds them."""
    env: dict[str, str] = {}
    for arguments in instructions("ENV"):
        for token in shlex.split(arguments):
            key, separator, value = token.partition("=")
            assert separator, f"ENV {arguments!r}: use the key=value form"
            env[key] = value
    return env


def image_workdir() -> str:
    return instructions("WORKDIR")[-1]


def image_cmd() -> list[str]:
    """The command line Docker runs: exec form as written, shell form under /bin/sh -c."""
    (command,) = instructions("CMD")
    if command.startswith("["):
        return json.loads(command)
    return ["/bin/sh", "-c", command]


def image_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context."""
    copies = []
    for arguments in instructions("COPY"):
        parts = shlex.split(arguments)
        assert not any(p.startswith("--") for p in parts), f"COPY {arguments}: flags are not modelled here"
        copies.append((parts[:-1], parts[-1]))
    return copies


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (negated, regex), with Docker's `*`, `?` and `**` meanings."""
    patterns = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(regex + "$")))
    return patterns


IGNORE = _ignore_patterns()


def excluded_from_context(relative_path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    parts = relative_path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in IGNORE:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _context_files(source: str) -> list[Path]:
    path = REPO / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if not excluded_from_context(f.relative_to(REPO).as_posix())]


def stage_image(root: Path) -> None:
    """What the image's COPY instructions put in the image, written under `root` (its `/`).
    Relative destinations are inside WORKDIR; file modes are kept, as COPY keeps them."""
    workdir = Path(image_workdir())
    for sources, destination in image_copies():
        target = workdir / destination  # an absolute destination replaces WORKDIR
        for source in sources:
            for file in _context_files(source):
                if (REPO / source).is_dir():
                    inside = target / file.relative_to(REPO / source)
                else:
                    inside = target / file.name if destination.endswith("/") else target
                staged = root / inside.relative_to("/")
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, staged)


def _env_value(item: dict[str, Any], downward_api: dict[str, str]) -> str | None:
    if "value" in item:
        return str(item["value"])
    field_path = item["valueFrom"]["fieldRef"]["fieldPath"]
    assert field_path in downward_api, f"env {item['name']}: give the test a value for {field_path}"
    return downward_api[field_path]


@contextmanager
def running_container(tmp_path: Path, pod_spec: dict[str, Any], config_maps: dict[str, dict[str, str]],
                      extra_env: dict[str, str], downward_api: dict[str, str] | None = None) -> Iterator[str]:
    """The pod's only container, run as the image runs it; yields its URL (on a free port).

    The volumes are tmp_path/<volume name>; `config_maps` are the ConfigMaps of the build by name;
    Secrets referenced with `optional: true` are left out, as on a cluster where they do not exist.
    Knative's PORT is set to the free port, and a `--port` argument (which must equal the container
    port) is replaced by it. `extra_env` stands for what the cluster provides (the API server, the
    Prometheus) and wins over the rest.
    """
    (container,) = pod_spec["containers"]
    root = tmp_path / "image"
    stage_image(root)
    mounts = {image_workdir(): root / Path(image_workdir()).relative_to("/"), "/usr/local/bin": root / "usr/local/bin"}
    for mount in container.get("volumeMounts") or ():
        mounts[mount["mountPath"]] = tmp_path / mount["name"]
        mounts[mount["mountPath"]].mkdir(exist_ok=True)

    def mapped(value: str) -> str:
        for inside, outside in mounts.items():
            if value == inside or value.startswith(inside + "/"):
                return str(outside) + value[len(inside):]
        return value

    env: dict[str, str] = {key: mapped(value) for key, value in image_env().items()}
    for source in container.get("envFrom") or ():
        if "configMapRef" in source:
            env.update({key: mapped(value) for key, value in config_maps[source["configMapRef"]["name"]].items()})
        else:
            assert source["secretRef"].get("optional"), f"Secret {source['secretRef']['name']} is required"
    for item in container.get("env") or ():
        value = _env_value(item, downward_api or {})
        if value is not None:
            env[item["name"]] = value
    port = free_port()
    container_port = container["ports"][0]["containerPort"]
    args = list(container.get("args") or ())
    for i in range(1, len(args)):
        if args[i - 1] == "--port":
            assert args[i] == str(container_port), f"serves on {args[i]}, but the container port is {container_port}"
            args[i] = str(port)
    command = list(container.get("command") or ()) + args if container.get("command") or args else image_cmd()
    env.update({"PATH": f"{mounts['/usr/local/bin']}:{BIN}:/usr/bin:/bin",  # BIN: the image's python
                "HOME": str(tmp_path), "PORT": str(port), **extra_env})
    log_path = tmp_path / f"{container['name']}.log"  # a file, not a pipe nobody reads that could fill up
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=mapped(image_workdir()), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(url, process)
        except RuntimeError:
            process.kill()
            process.wait()
            output = log_path.read_text(errors="replace")
            raise AssertionError(f"{container['name']} did not start:\n{output[-3000:]}") from None
        yield url
    finally:
        stop_process(process)
