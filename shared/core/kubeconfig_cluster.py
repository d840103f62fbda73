"""The cluster name a kubeconfig context points at: the default of CLUSTER_NAME outside a cluster.

`kubectl config get-contexts` shows it in the CLUSTER column; it is what an operator calls the
cluster on their machine. Only the files are read (through shared.core.kubeconfig), nothing is
asked of the API server.
"""

from __future__ import annotations

from pathlib import Path

from shared.core.kubeconfig import read_kubeconfig


def kubeconfig_cluster_name(path: Path | None, context: str | None) -> str | None:
    """The `cluster` of `context` (default: current-context) in the kubeconfig at `path` (default:
    ~/.kube/config; a `:`-separated list as KUBECONFIG may be); None when the file, the context or its
    cluster is missing or unreadable (an unreadable file of a list is left out)."""
    config = read_kubeconfig(path, skip_unreadable=True)
    entry = config.contexts.get(context or config.current_context or "")
    cluster = entry.fields.get("cluster") if entry else None
    return str(cluster) if cluster else None
