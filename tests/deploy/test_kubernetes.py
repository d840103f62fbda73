"""kubernetes/, the plain install, as `kubectl kustomize` builds it: one `k8s-monitor serve` pod.

The checks every install shares (strict schemas, references between objects, RBAC against the
requests `serve` sends, uninstall) are in test_manifests.py; `serve` itself runs from the image in
test_image.py. Here: the Deployment's shape, and what the README tells a user to type about it.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from shared.cli import build_parser
from shared.core.settings import Settings, load_settings
from shared.sources.quantity import cpu_millicores, memory_bytes
from tests.support.crd_schema import load_yaml_documents
from tests.support.kustomize import build
from tests.support.readme import readme_section, shell_blocks

REPO = Path(__file__).resolve().parents[2]
OBJECTS = build(REPO / "kubernetes" / "overlays" / "prometheus-operator")
KNATIVE_OBJECTS = build(REPO / "knative" / "overlays" / "prometheus-operator")
SECRET_TEMPLATES = load_yaml_documents(REPO / "common" / "base" / "secrets.example.yaml")
NAME = "k8s-resource-monitor"
NAMESPACE = "monitoring"
IMAGE_UID = 10001


def _one(kind: str, name: str = NAME, objects: tuple[dict[str, Any], ...] = OBJECTS) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} in kubernetes/, found {len(found)}"
    return found[0]


DEPLOYMENT = _one("Deployment")
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
CONFIG = _one("ConfigMap", "k8s-resource-monitor-config")["data"]


def _settings() -> Settings:
    return load_settings(**{key.lower(): value for key, value in CONFIG.items()})


def test_one_replica_replaced_not_rolled() -> None:
    """SQLite allows one writer: the old pod is gone before the new one opens the database."""
    spec = DEPLOYMENT["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["revisionHistoryLimit"] >= 1, "`kubectl rollout undo` needs an earlier revision"


def test_container_runs_serve_on_the_pod_address_and_the_container_port() -> None:
    argv = [*CONTAINER["command"][1:], *CONTAINER["args"]]
    assert CONTAINER["command"][0] == "k8s-monitor", "the command the image installs (scripts/k8s-monitor)"
    args = build_parser(argv).parse_args(argv)  # the real command line: a renamed option fails here
    assert args.command == "serve" and not args.no_schedule, "serve collects and backs up on its own schedule"
    assert args.host == "0.0.0.0", "on 127.0.0.1 neither the kubelet's probes nor the Service would reach it"
    (port,) = CONTAINER["ports"]
    assert args.port == port["containerPort"]


def test_probes_ask_the_health_paths_on_the_served_port() -> None:
    liveness, readiness = CONTAINER["livenessProbe"]["httpGet"], CONTAINER["readinessProbe"]["httpGet"]
    assert (liveness["path"], readiness["path"]) == ("/health/liveness", "/health/readiness")
    assert liveness["port"] == readiness["port"] == CONTAINER["ports"][0]["name"]
    assert "startupProbe" not in CONTAINER, "liveness calls no dependency: a long first collection is not a hang"


def test_container_has_requests_within_limits() -> None:
    resources = CONTAINER["resources"]
    assert cpu_millicores(resources["requests"]["cpu"]) <= cpu_millicores(resources["limits"]["cpu"])
    assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(resources["limits"]["memory"])
    knative_limits = [memory_bytes(c["resources"]["limits"]["memory"]) for o in KNATIVE_OBJECTS
                      if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"
                      for c in o["spec"]["template"]["spec"]["containers"]]
    assert memory_bytes(resources["limits"]["memory"]) >= max(knative_limits), \
        "one process holds what the largest function holds, and more"


def test_runs_as_the_image_user_without_privileges_on_a_read_only_root() -> None:
    pod, container = POD["securityContext"], CONTAINER["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == IMAGE_UID and pod["fsGroup"] == IMAGE_UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]
    assert container["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in CONTAINER["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", "/data", "/backup"} <= writable, "temporary files, the database and the backups"


def test_volumes_hold_the_database_and_the_backups_where_the_settings_put_them() -> None:
    settings = _settings()
    mounts = {m["name"]: PurePosixPath(m["mountPath"]) for m in CONTAINER["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in POD["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"data": "k8s-resource-monitor-data", "backup": "k8s-resource-monitor-backup"}
    assert PurePosixPath(settings.database_path).parent == mounts["data"]
    assert PurePosixPath(settings.backup_dir) == mounts["backup"]


def test_environment_is_the_shared_settings_secrets_and_lease_identity() -> None:
    known = {name.upper() for name in Settings.model_fields}
    env = {item["name"]: item for item in CONTAINER.get("env") or ()}
    assert set(env) <= known, "variables no setting reads"
    assert {name: item["valueFrom"]["fieldRef"]["fieldPath"] for name, item in env.items()} == {
        "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}, "the Lease's holder and namespace"
    config_refs = [s["configMapRef"]["name"] for s in CONTAINER["envFrom"] if "configMapRef" in s]
    secret_refs = {s["secretRef"]["name"]: s["secretRef"] for s in CONTAINER["envFrom"] if "secretRef" in s}
    assert config_refs == ["k8s-resource-monitor-config"]
    assert set(secret_refs) == {s["metadata"]["name"] for s in SECRET_TEMPLATES}, "every notification channel"
    assert all(ref.get("optional") for ref in secret_refs.values()), "a missing Secret must leave its channel off"
    assert POD["enableServiceLinks"] is False, "no <SERVICE>_PORT variables beside the settings"
    assert "ALERT_CLOUDEVENTS_WITHOUT_TOKEN" not in env, "no Broker here: /alerts takes the token from everyone"


def test_prometheus_scrapes_serve_as_job_k8s_resource_monitor() -> None:
    service, monitor = _one("Service"), _one("ServiceMonitor")
    assert service["spec"]["selector"].items() <= DEPLOYMENT["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == CONTAINER["ports"][0]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")
    assert "jobLabel" not in monitor["spec"] and service["metadata"]["name"] == NAME, \
        "the job label is the Service's name, which the alert rules and the dashboard expect"


def _memory_rule_containers(objects: tuple[dict[str, Any], ...]) -> re.Pattern[str]:
    rule = next(r for g in _one("PrometheusRule", objects=objects)["spec"]["groups"] for r in g["rules"]
                if r.get("alert") == "K8sResourceMonitorHighMemory")
    (pattern,) = set(re.findall(r'container=~"([^"]+)"', rule["expr"]))
    return re.compile(pattern)


def test_memory_alert_watches_every_container_of_both_installs() -> None:
    for objects in (OBJECTS, KNATIVE_OBJECTS):
        pattern = _memory_rule_containers(objects)
        for obj in objects:
            if obj["kind"] in ("Deployment", "Service") and "template" in obj.get("spec", {}):
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    assert pattern.fullmatch(container["name"]), f"{obj['kind']}/{obj['metadata']['name']}"


# --- what the README tells a user to type ---------------------------------------------------------------------

SECTION = readme_section("## Deploying on plain Kubernetes")
UPGRADES = readme_section("### Plain Kubernetes: rollout and rollback", readme_section("## Upgrades and rollbacks"))


def test_readme_commands_name_the_deployment_and_namespace_of_the_install() -> None:
    commands = [line for block in shell_blocks(SECTION) + shell_blocks(UPGRADES) for line in block.splitlines()
                if line.startswith("kubectl ") and re.search(r"\b(?:deployment|deploy|svc)/", line)]
    assert len(commands) >= 5
    for command in commands:
        assert "-n monitoring" in command, command
        for kind, name in re.findall(r"\b(deployment|deploy|svc)/([a-z0-9-]+)", command):
            assert _one("Deployment" if kind.startswith("deploy") else "Service", name), command


def test_readme_rolls_out_and_back_with_kubectl_rollout() -> None:
    text = "\n".join(shell_blocks(UPGRADES))
    for verb in ("status", "undo", "history"):
        assert f"kubectl -n monitoring rollout {verb} deployment/{NAME}" in text, verb
    assert "k8s-monitor backup" in text.split("kubectl apply -k")[0], "a backup before the new version starts"
