"""The cluster name a kubeconfig context points at: the default of CLUSTER_NAME outside a cluster.

`kubectl config get-contexts` shows it in the CLUSTER column; it is what an operator calls the
cluster on their machine. Only the file is read, nothing is asked of the API server.
"""

from __future__ import annotations

import os
from pathlib import Path


def kubeconfig_cluster_name(path: Path | None, context: str | None) -> str | None:
    """The `cluster` of `context` (default: current-context) in the kubeconfig at `path` (default:
    ~/.kube/config; a `:`-separated list as KUBECONFIG may be); None when the file, the context or its
    cluster is missing or unreadable."""
    files = [Path(part) for part in str(path).split(os.pathsep) if part] if path is not None else [
        Path.home() / ".kube" / "config"]
    configs = [config for config in map(_read, files) if config]
    # kubectl's merge of a KUBECONFIG list: the first file that sets current-context wins, and so
    # does the first file that defines a context of that name
    wanted = context or next((c["current-context"] for c in configs if c.get("current-context")), None)
    for config in configs:
        for entry in config.get("contexts") or ():
            if isinstance(entry, dict) and entry.get("name") == wanted:
                cluster = (entry.get("context") or {}).get("cluster")
                return str(cluster) if cluster else None
    return None


def _read(path: Path) -> dict | None:
    import yaml  # type: ignore[import-untyped]  # the Kubernetes client's dependency, imported where used

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) else None
