"""The installs as a cluster would receive them: every kustomization built by the real `kubectl
kustomize`, every object checked against its schema, references between objects, RBAC, alerts,
dashboard, and the README's install and uninstall commands.

No cluster here: `kubectl kustomize` builds each directory holding a kustomization (found by
tests/kustomize.py, so a new overlay cannot escape), core kinds are checked with kubernetes-validate
in strict mode, Knative and Prometheus Operator kinds against their vendored CRD schemas
(tests/crd_schema.py), and the rest (cron, sinks, RBAC, PromQL) against the code and tools that give
the real answer: the requests the code sends to the simulated API server, `promtool`, and /metrics.
The plain Kubernetes install's own shape is in test_manifests_kubernetes.py.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import functions_framework
import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.core.settings import Settings, load_settings
from shared.notify.cloudevents import ALERT_EVENT_TYPES
from shared.sources.quantity import cpu_millicores, memory_bytes
from shared.store.connection import SchemaOutdated, connect
from tests.conftest import make_settings
from tests.support.crd_schema import crd_schemas, feature_flags_used, load_yaml_documents, strict_json_schema
from tests.support.image import running_container
from tests.support.kustomize import KustomizeError, build, kustomization_dirs, object_id, relative
from tests.support.readme import README, readme_section, shell_blocks
from tests.support.servers import prometheus_available

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "common"
KNATIVE = REPO / "knative"
KNATIVE_OVERLAY = KNATIVE / "overlays" / "prometheus-operator"
KUBERNETES = REPO / "kubernetes"
KUBERNETES_OVERLAY = KUBERNETES / "overlays" / "prometheus-operator"
# What a user applies: each install, and each with the Prometheus Operator.
INSTALLS = {"knative": (KNATIVE, KNATIVE_OVERLAY), "kubernetes": (KUBERNETES, KUBERNETES_OVERLAY)}
KUBERNETES_VERSION = "1.32"
NAMESPACE = "monitoring"
KSVC = ("serving.knative.dev/v1", "Service")
DEPLOYMENT = ("apps/v1", "Deployment")
CRONJOB = ("batch/v1", "CronJob")
MONITORING_GROUP = "monitoring.coreos.com"
PROMETHEUS_OPERATOR_KINDS = {(f"{MONITORING_GROUP}/v1", "ServiceMonitor"), (f"{MONITORING_GROUP}/v1", "PrometheusRule")}
IMAGE = "k8s-resource-monitor"
FUNCTIONS = ("collect", "health", "backup", "alert-notify", "report")
DATA_CLAIM = "k8s-resource-monitor-data"
SERVICE_ACCOUNT = "k8s-resource-monitor"
JOB = "k8s-resource-monitor"
KNATIVE_ONLY_POD_FIELDS = ("containerConcurrency", "timeoutSeconds", "idleTimeoutSeconds",
                           "responseStartTimeoutSeconds")
KNATIVE_QUEUE_PROXY_PORT = 8012  # the sidecar Knative puts in front of every function's container port
CADVISOR_METRICS = frozenset({"container_memory_working_set_bytes", "container_spec_memory_limit_bytes"})
PROMETHEUS_METRICS = frozenset({"up"})  # written by Prometheus for every target
SECRET_TEMPLATES_FILE = COMMON / "base" / "secrets.example.yaml"


def _try_build(directory: Path) -> tuple[dict[str, Any], ...]:
    """The build's objects, or none when kubectl refuses it (test_kustomization_builds shows why)."""
    try:
        return build(directory)
    except KustomizeError:
        return ()


KUSTOMIZATIONS = kustomization_dirs()
BUILDS = {directory: _try_build(directory) for directory in KUSTOMIZATIONS}
BASE_OBJECTS = list(_try_build(KNATIVE))
ALL_OBJECTS = list(_try_build(KNATIVE_OVERLAY))  # the Knative install, with the Prometheus Operator
SECRET_TEMPLATES = load_yaml_documents(SECRET_TEMPLATES_FILE)
CRD_SCHEMAS = crd_schemas()


def _objects(api_version: str, kind: str, objects: list[dict] = ALL_OBJECTS) -> list[dict]:
    return [o for o in objects if (o["apiVersion"], o["kind"]) == (api_version, kind)]


def _one(api_version: str, kind: str, name: str, objects: list[dict] = ALL_OBJECTS) -> dict:
    found = [o for o in _objects(api_version, kind, objects) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _name(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _container(ksvc: dict) -> dict:
    containers = ksvc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{_name(ksvc)}: one container per function"
    return containers[0]


def _env(ksvc: dict) -> dict[str, dict]:
    return {item["name"]: item for item in _container(ksvc).get("env") or ()}


def _config() -> dict[str, str]:
    return _one("v1", "ConfigMap", "k8s-resource-monitor-config")["data"]


def _knative_services() -> list[dict]:
    return _objects(*KSVC)


def _resources(directory: Path) -> list[str]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    return list(kustomization.get("resources") or ())


def _unique_objects() -> list[tuple[str, dict]]:
    """Every distinct object any kustomization yields (named by the first build yielding it), and the
    Secret templates a user applies by hand."""
    seen: dict[str, tuple[str, dict]] = {}
    for directory, objects in BUILDS.items():
        for obj in objects:
            seen.setdefault(json.dumps(obj, sort_keys=True), (relative(directory), obj))
    for obj in SECRET_TEMPLATES:
        seen.setdefault(json.dumps(obj, sort_keys=True), (relative(SECRET_TEMPLATES_FILE.parent), obj))
    return list(seen.values())


UNIQUE_OBJECTS = _unique_objects()

# --- the kustomizations ------------------------------------------------------------------------------------


def test_every_install_directory_is_found() -> None:
    """The search is not vacuous: it finds the installs, their overlays and what they share."""
    found = {relative(d) for d in KUSTOMIZATIONS}
    assert {"knative/", "knative/base/", "knative/overlays/prometheus-operator/", "kubernetes/", "kubernetes/base/",
            "kubernetes/overlays/prometheus-operator/", "common/base/", "common/prometheus-operator/"} <= found


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=relative)
def test_kustomization_builds_with_kubectl(directory: Path) -> None:
    objects = build(directory)  # raises with kubectl's own message
    assert objects, f"{relative(directory)} yields no objects"
    for obj in objects:
        assert {"apiVersion", "kind", "metadata"} <= set(obj) and obj["metadata"].get("name"), obj


def test_kustomize_refuses_an_overlay_inside_its_base(tmp_path: Path) -> None:
    """Why base/ and overlays/ are siblings: the layout this repository had, which kubectl refuses."""
    (tmp_path / "overlay").mkdir()
    (tmp_path / "kustomization.yaml").write_text("resources: [namespace.yaml]\n")
    (tmp_path / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    (tmp_path / "overlay" / "kustomization.yaml").write_text("resources: [..]\n")
    with pytest.raises(KustomizeError, match="cycle detected"):
        build(tmp_path / "overlay")


def _readme_kustomize_paths() -> set[str]:
    """Every directory the README builds or applies (`kubectl apply -k DIR`, `kubectl kustomize DIR`, ...)."""
    readme = README.read_text(encoding="utf-8")
    found = re.findall(r"kubectl (?:-n \S+ )?(?:apply|diff|delete) -k ([^\s`)]+)|kubectl kustomize ([^\s`)|]+)", readme)
    return {a or b for a, b in found}


def test_every_path_the_readme_applies_is_a_kustomization_that_builds() -> None:
    paths = _readme_kustomize_paths()
    directories = {(REPO / path).resolve() for path in paths}
    assert {relative(d) for d in directories} >= {"knative/", "knative/overlays/prometheus-operator/", "kubernetes/",
                                                  "kubernetes/overlays/prometheus-operator/"}
    for path in sorted(paths):
        directory = (REPO / path).resolve()
        assert directory in KUSTOMIZATIONS, f"README.md applies {path}, which holds no kustomization"
        assert build(directory), path


def _manifest_files() -> set[Path]:
    return {p.resolve() for top in (COMMON, KNATIVE, KUBERNETES) for p in top.rglob("*.y*ml")
            if p.name not in ("kustomization.yaml", "kustomization.yml")}


def test_every_manifest_file_is_applied_except_the_secret_templates() -> None:
    referenced = set()
    for directory in KUSTOMIZATIONS:
        referenced |= {(directory / entry).resolve() for entry in _resources(directory)}
    assert _manifest_files() - referenced == {SECRET_TEMPLATES_FILE.resolve()}, "manifests no kustomization applies"
    assert SECRET_TEMPLATES_FILE.resolve() not in referenced, "applying the templates would overwrite real secrets"


@pytest.mark.parametrize("install", INSTALLS)
def test_overlay_adds_only_prometheus_operator_objects(install: str) -> None:
    root, overlay = INSTALLS[install]
    with_operator = {json.dumps(o, sort_keys=True): o for o in build(overlay)}
    without = {json.dumps(o, sort_keys=True) for o in build(root)}
    assert without <= set(with_operator), "the overlay changes the objects of the install"
    added = {(with_operator[key]["apiVersion"], with_operator[key]["kind"]) for key in set(with_operator) - without}
    assert added == PROMETHEUS_OPERATOR_KINDS


def test_both_installs_apply_the_same_shared_objects() -> None:
    """RBAC, settings, volumes and dashboard come from common/base, not from copies; Knative adds a
    label to the namespace and nothing else."""
    shared = {object_id(o): o for o in build(COMMON / "base")}
    for install, (root, _) in INSTALLS.items():
        built = {object_id(o): o for o in build(root)}
        assert set(shared) <= set(built), f"{install} leaves out shared objects"
        for key, obj in shared.items():
            if obj["kind"] == "Namespace":
                assert obj["metadata"]["labels"].items() <= built[key]["metadata"]["labels"].items()
            else:
                assert built[key] == obj, f"{install} changes {'/'.join(key)}"
        assert common_in(root), f"{install} does not build on common/base"
    rules = [o for o in build(KNATIVE_OVERLAY) if o["kind"] == "PrometheusRule"]
    assert rules == [o for o in build(KUBERNETES_OVERLAY) if o["kind"] == "PrometheusRule"], "one set of alert rules"


def common_in(directory: Path) -> bool:
    """Whether the kustomization at `directory` reaches common/base through its resources."""
    for entry in _resources(directory):
        target = (directory / entry).resolve()
        if target == (COMMON / "base").resolve() or (target.is_dir() and common_in(target)):
            return True
    return False


def test_every_namespaced_object_lives_in_monitoring() -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for _, obj in UNIQUE_OBJECTS:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, f"{_name(obj)} is cluster-scoped"
        else:
            assert namespace == NAMESPACE, f"{_name(obj)} is in {namespace!r}, not {NAMESPACE}"


def test_every_object_carries_the_label_the_uninstall_selects() -> None:
    for _, obj in UNIQUE_OBJECTS:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "k8s-resource-monitor", _name(obj)


# --- uninstall ---------------------------------------------------------------------------------------------

_KUBECTL_KINDS = {  # resource names of kubectl, as the README's uninstall commands use them
    "ksvc": KSVC, "pingsource": ("sources.knative.dev/v1", "PingSource"),
    "sinkbinding": ("sources.knative.dev/v1", "SinkBinding"), "trigger": ("eventing.knative.dev/v1", "Trigger"),
    "broker": ("eventing.knative.dev/v1", "Broker"), "service": ("v1", "Service"), "configmap": ("v1", "ConfigMap"),
    "secret": ("v1", "Secret"), "pvc": ("v1", "PersistentVolumeClaim"), "serviceaccount": ("v1", "ServiceAccount"),
    "deployment": DEPLOYMENT,
    "role": ("rbac.authorization.k8s.io/v1", "Role"), "rolebinding": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    "clusterrole": ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    "clusterrolebinding": ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    "servicemonitor": (f"{MONITORING_GROUP}/v1", "ServiceMonitor"),
    "prometheusrule": (f"{MONITORING_GROUP}/v1", "PrometheusRule"),
}
_SECTIONS = {"knative": "## Deploying on Knative", "kubernetes": "## Deploying on plain Kubernetes"}


def deleted_objects(block: str, objects: list[dict]) -> list[dict]:
    """The objects among `objects` that the `kubectl delete` commands of a shell block delete."""
    deleted = []
    for line in block.splitlines():
        words = line.split("#")[0].split()
        if words[:1] != ["kubectl"] or "delete" not in words:
            continue
        namespace = words[words.index("-n") + 1] if "-n" in words else None
        after = words[words.index("delete") + 1:]
        kinds = {_KUBECTL_KINDS[kind] for kind in after[0].split(",")}
        selector = after[after.index("-l") + 1] if "-l" in after else None
        names = [] if selector else [w for w in after[1:] if not w.startswith("-")]
        for obj in objects:
            if (obj["apiVersion"], obj["kind"]) not in kinds:
                continue
            if obj["metadata"].get("namespace") not in (None, namespace):
                continue
            if selector:
                key, _, value = selector.partition("=")
                if obj["metadata"].get("labels", {}).get(key) == value:
                    deleted.append(obj)
            elif obj["metadata"]["name"] in names:
                deleted.append(obj)
    return deleted


@pytest.mark.parametrize("install", INSTALLS)
def test_uninstall_deletes_every_object_but_the_namespace_and_keeps_the_history(install: str) -> None:
    objects = list(build(INSTALLS[install][1])) + SECRET_TEMPLATES
    blocks = shell_blocks(readme_section("### Uninstall", readme_section(_SECTIONS[install])))
    assert len(blocks) == 2, "one block to uninstall, one to delete the history on purpose"
    uninstall, history = (deleted_objects(block, objects) for block in blocks)
    kept = [o for o in objects if o not in uninstall]
    assert sorted(map(_name, kept)) == sorted(_name(o) for o in objects
                                              if o["kind"] in ("Namespace", "PersistentVolumeClaim"))
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert history == claims and len(claims) == 2, "deleting the history deletes the two volumes, nothing else"


def test_uninstall_check_sees_what_a_command_deletes() -> None:
    objects = list(build(KUBERNETES))
    assert {_name(o) for o in deleted_objects(
        "kubectl -n monitoring delete deployment,pvc -l app.kubernetes.io/part-of=k8s-resource-monitor", objects)} == {
        "Deployment/k8s-resource-monitor", f"PersistentVolumeClaim/{DATA_CLAIM}",
        "PersistentVolumeClaim/k8s-resource-monitor-backup"}
    assert deleted_objects("kubectl delete deployment -l app.kubernetes.io/part-of=k8s-resource-monitor", objects) == []
    assert deleted_objects("kubectl -n monitoring delete pvc other-claim", objects) == []


# --- schemas ---------------------------------------------------------------------------------------------


def _validation_id(entry: tuple[str, dict]) -> str:
    return f"{entry[0]}{_name(entry[1])}"


def _crd_validator(obj: dict) -> jsonschema.Draft7Validator:
    key = (obj["apiVersion"], obj["kind"])
    assert key in CRD_SCHEMAS, f"no CRD schema for {key} in tests/schemas/"
    return jsonschema.Draft7Validator(strict_json_schema(CRD_SCHEMAS[key]))


def schema_errors(obj: dict) -> list[str]:
    """What the API server would refuse: CRD kinds by their vendored schema, the rest (built-in kinds)
    by kubernetes-validate in strict mode, which also refuses a kind it does not know."""
    group = obj["apiVersion"].rpartition("/")[0]
    if group.endswith("knative.dev") or group == MONITORING_GROUP:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _crd_validator(obj).iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.absolute_path))}: {exc.message}"]
    return []


@pytest.mark.parametrize("entry", UNIQUE_OBJECTS, ids=_validation_id)
def test_every_object_passes_its_strict_schema(entry: tuple[str, dict]) -> None:
    assert schema_errors(entry[1]) == []


def test_schema_check_covers_every_kind_and_has_a_schema_for_each() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for _, o in UNIQUE_OBJECTS}
    assert {KSVC, DEPLOYMENT, *PROMETHEUS_OPERATOR_KINDS} <= kinds
    custom = {k for k in kinds if k[0].rpartition("/")[0].endswith("knative.dev") or k[0].startswith(MONITORING_GROUP)}
    assert custom <= set(CRD_SCHEMAS), "custom kinds without a vendored CRD schema"


def _misspelt(obj: dict, path: tuple[str | int, ...], field: str) -> dict:
    copy = json.loads(json.dumps(obj))
    node = copy
    for key in path:
        node = node[key]
    node[field] = 1
    return copy


@pytest.mark.parametrize(("api_version", "kind", "name", "path", "field"), [
    (*KSVC, "collect", ("spec", "template", "spec"), "containerConcurency"),
    (f"{MONITORING_GROUP}/v1", "ServiceMonitor", JOB, ("spec", "endpoints", 0), "scrapeTimout"),
    (f"{MONITORING_GROUP}/v1", "PrometheusRule", JOB, ("spec", "groups", 0), "partial_response_strategy"),
    (*DEPLOYMENT, JOB, ("spec",), "stratgy"),
    ("v1", "Service", JOB, ("spec", "ports", 0), "target_port"),
], ids=["knative-service", "servicemonitor", "prometheusrule", "deployment", "service"])
def test_schema_check_rejects_a_misspelt_field(api_version: str, kind: str, name: str, path: tuple, field: str) -> None:
    objects = list(build(KUBERNETES_OVERLAY)) if api_version in ("v1", "apps/v1") else ALL_OBJECTS
    obj = _one(api_version, kind, name, objects)
    assert schema_errors(obj) == []
    assert any(field in error for error in schema_errors(_misspelt(obj, path, field)))


def _as_core_pod(ksvc: dict) -> dict:
    """The pod Knative makes of a Service's template, for the fields Knative passes through unchecked
    (affinity, securityContext, fieldRef, PVCs). Knative fills in each probe's port itself."""
    spec = json.loads(json.dumps(ksvc["spec"]["template"]["spec"]))
    for field in KNATIVE_ONLY_POD_FIELDS:
        spec.pop(field, None)
    for container in spec["containers"]:
        port = container["ports"][0]["containerPort"]
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            for action in ("httpGet", "tcpSocket"):
                if action in container.get(probe_name, {}):
                    container[probe_name][action].setdefault("port", port)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": ksvc["metadata"]["name"]}, "spec": spec}


@pytest.mark.parametrize("ksvc", _knative_services(), ids=_name)
def test_knative_pod_template_is_a_valid_core_pod_spec(ksvc: dict) -> None:
    kubernetes_validate.validate(_as_core_pod(ksvc), KUBERNETES_VERSION, strict=True)


# --- references between objects -------------------------------------------------------------------------


def pod_templates(objects: list[dict] | tuple[dict, ...]) -> list[tuple[dict, dict]]:
    """(workload, its pod template) for Deployments, CronJobs and Knative Services. The labels of a
    Knative Service's pods are its template's plus the `serving.knative.dev/service` label Knative adds."""
    templates = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) == DEPLOYMENT:
            templates.append((obj, obj["spec"]["template"]))
        elif (obj["apiVersion"], obj["kind"]) == CRONJOB:
            templates.append((obj, obj["spec"]["jobTemplate"]["spec"]["template"]))
        elif (obj["apiVersion"], obj["kind"]) == KSVC:
            template = json.loads(json.dumps(obj["spec"]["template"]))
            template.setdefault("metadata", {}).setdefault("labels", {})["serving.knative.dev/service"] = \
                obj["metadata"]["name"]
            templates.append((obj, template))
    return templates


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


Names = set[tuple[str, str]]  # (kind, name) of every object of a build


def _env_refs(container: dict) -> list[tuple[str, dict]]:
    """(kind, reference) of every ConfigMap and Secret a container reads its environment from."""
    refs = [(kind, source[key]) for source in container.get("envFrom") or ()
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")) if key in source]
    return refs + [(kind, item["valueFrom"][key]) for item in container.get("env") or () if "valueFrom" in item
                   for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret"))
                   if key in item["valueFrom"]]


def _pod_problems(workload: dict, template: dict, names: Names) -> list[str]:
    spec, where = template["spec"], _name(workload)
    problems = []
    labels = template["metadata"].get("labels") or {}
    if workload["kind"] == "Deployment" and not _selects(workload["spec"]["selector"]["matchLabels"], labels):
        problems.append(f"{where}: the selector does not match the pod template's labels")
    if spec.get("serviceAccountName") and ("ServiceAccount", spec["serviceAccountName"]) not in names:
        problems.append(f"{where}: ServiceAccount {spec['serviceAccountName']} does not exist")
    volumes = {v["name"]: v for v in spec.get("volumes") or ()}
    claims = {name: v["persistentVolumeClaim"]["claimName"]
              for name, v in volumes.items() if "persistentVolumeClaim" in v}
    problems += [f"{where}: volume {name} claims {claim}, which does not exist"
                 for name, claim in claims.items() if ("PersistentVolumeClaim", claim) not in names]
    problems += [f"{where}: volume {name} mounts Secret {v['secret']['secretName']}, which does not exist"
                 for name, v in volumes.items() if "secret" in v and not v["secret"].get("optional")
                 and ("Secret", v["secret"]["secretName"]) not in names]
    mounted = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts") or ()}
    problems += [f"{where}: mount of {name}, which is no volume" for name in sorted(mounted - set(volumes))]
    problems += [f"{where}: {kind} {ref['name']} does not exist and is not optional"
                 for c in spec["containers"] for kind, ref in _env_refs(c)
                 if (kind, ref["name"]) not in names and not ref.get("optional")]
    return problems + [f"{where}: volume {name} is mounted nowhere" for name in sorted(set(volumes) - mounted)]


def _service_problems(service: dict, objects: list[dict] | tuple[dict, ...]) -> list[str]:
    selected = [(w, t) for w, t in pod_templates(objects)
                if _selects(service["spec"].get("selector") or {}, t["metadata"].get("labels") or {})]
    if len(selected) != 1:
        return [f"{_name(service)} selects the pods of {len(selected)} workloads, not one"]
    workload, template = selected[0]
    ports = [p for c in template["spec"]["containers"] for p in c.get("ports") or ()]
    names = {p.get("name") for p in ports}
    numbers = {p["containerPort"] for p in ports}
    if workload["kind"] == "Service":  # Knative: the queue-proxy forwards to the container port
        numbers.add(KNATIVE_QUEUE_PROXY_PORT)
    return [f"{_name(service)}: port {port.get('name')} targets {target}, which {_name(workload)}'s pods do not serve"
            for port in service["spec"]["ports"]
            for target in [port.get("targetPort", port["port"])]
            if target not in (names if isinstance(target, str) else numbers)]


def _monitor_problems(monitor: dict, objects: list[dict] | tuple[dict, ...]) -> list[str]:
    namespaces = monitor["spec"].get("namespaceSelector", {}).get("matchNames") or [monitor["metadata"]["namespace"]]
    services = [s for s in objects if (s["apiVersion"], s["kind"]) == ("v1", "Service")
                and s["metadata"]["namespace"] in namespaces
                and _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels") or {})]
    if len(services) != 1:
        return [f"{_name(monitor)} selects {len(services)} Services, not one"]
    port_names = {p.get("name") for p in services[0]["spec"]["ports"]}
    return [f"{_name(monitor)}: {_name(services[0])} has no port named {e.get('port')}"
            for e in monitor["spec"]["endpoints"] if e.get("port") not in port_names]


def _binding_problems(binding: dict, names: Names) -> list[str]:
    role = (binding["roleRef"]["kind"], binding["roleRef"]["name"])
    problems = [] if role in names else [f"{_name(binding)}: {role[0]} {role[1]} does not exist"]
    return problems + [f"{_name(binding)}: ServiceAccount {s['name']} does not exist" for s in binding["subjects"]
                       if s["kind"] == "ServiceAccount" and ("ServiceAccount", s["name"]) not in names]


def reference_problems(objects: list[dict] | tuple[dict, ...]) -> list[str]:
    """What would leave a pod Pending, a Service without endpoints or a scrape without a target."""
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    problems = [p for workload, template in pod_templates(objects) for p in _pod_problems(workload, template, names)]
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) == ("v1", "Service"):
            problems += _service_problems(obj, objects)
        elif obj["kind"] == "ServiceMonitor":
            problems += _monitor_problems(obj, objects)
        elif obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            problems += _binding_problems(obj, names)
    return problems


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=relative)
def test_references_between_objects_resolve(directory: Path) -> None:
    assert reference_problems(build(directory)) == []


def test_reference_check_finds_what_would_break() -> None:
    objects = json.loads(json.dumps(build(KUBERNETES_OVERLAY)))
    deployment = _one(*DEPLOYMENT, JOB, objects)
    deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "k8s-monitor-data"
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] = "monitor-config"
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "web"
    _one("v1", "Service", JOB, objects)["spec"]["selector"]["app.kubernetes.io/component"] = "metrics"
    _one(f"{MONITORING_GROUP}/v1", "ServiceMonitor", JOB, objects)["spec"]["endpoints"][0]["port"] = "metrics"
    assert reference_problems(objects) == [
        "Deployment/k8s-resource-monitor: volume data claims k8s-monitor-data, which does not exist",
        "Deployment/k8s-resource-monitor: ConfigMap monitor-config does not exist and is not optional",
        "Service/k8s-resource-monitor selects the pods of 0 workloads, not one",
        "ServiceMonitor/k8s-resource-monitor: Service/k8s-resource-monitor has no port named metrics",
    ]


# --- the Knative Services ------------------------------------------------------------------------------------


def test_one_knative_service_per_function_from_one_image() -> None:
    services = _knative_services()
    assert sorted(s["metadata"]["name"] for s in services) == sorted(FUNCTIONS)
    base = yaml.safe_load((KNATIVE / "base" / "kustomization.yaml").read_text())
    (image,) = [i for i in base["images"] if i["name"] == IMAGE]
    built = f"{image['newName']}:{image['newTag']}"
    assert {_container(s)["image"] for s in services} == {built}


def _defines_function(source: Path, name: str) -> bool:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == name and node.decorator_list
               for node in tree.body)


@pytest.mark.parametrize("ksvc", _knative_services(), ids=_name)
def test_service_runs_an_existing_function(ksvc: dict) -> None:
    env = _env(ksvc)
    target, source = env["FUNCTION_TARGET"]["value"], env["FUNCTION_SOURCE"]["value"]
    assert ksvc["metadata"]["name"].replace("-", "_") == target, "Service name and target name the same function"
    assert source == f"functions/{target}/main.py"
    assert (REPO / source).is_file(), f"{source} does not exist: {ksvc['metadata']['name']} would crash at start"
    assert _defines_function(REPO / source, target), f"{source} defines no decorated function {target}"


def test_service_environment_uses_only_known_settings() -> None:
    known = {name.upper() for name in Settings.model_fields} | {"FUNCTION_TARGET", "FUNCTION_SOURCE"}
    for ksvc in _knative_services():
        assert set(_env(ksvc)) <= known, f"{_name(ksvc)} sets variables no setting reads"
    assert set(_config()) <= known, "the ConfigMap sets variables no setting reads"
    for secret in SECRET_TEMPLATES:
        assert set(secret["stringData"]) <= known, f"{_name(secret)} holds keys no setting reads"


def test_config_map_values_are_valid_settings() -> None:
    settings = load_settings(**{key.lower(): value for key, value in _config().items()})
    assert settings.collect_interval_seconds == 300
    assert str(settings.database_path) == "/data/k8s_metrics.db"


def test_secret_templates_are_optional_sources_of_alert_notify() -> None:
    sources = _container(_one(*KSVC, "alert-notify"))["envFrom"]
    secret_refs = {s["secretRef"]["name"]: s["secretRef"] for s in sources if "secretRef" in s}
    assert set(secret_refs) == {s["metadata"]["name"] for s in SECRET_TEMPLATES}
    assert all(ref.get("optional") for ref in secret_refs.values()), "a missing Secret must leave its channel off"
    others = [s for s in _knative_services() if s["metadata"]["name"] != "alert-notify"]
    assert not any("secretRef" in s for o in others for s in _container(o).get("envFrom") or ())


def test_collect_runs_alone_and_ends_before_its_timeout() -> None:
    ksvc = _one(*KSVC, "collect")
    template = ksvc["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "1"
    assert template["spec"]["containerConcurrency"] == 1
    budget_seconds = load_settings(**{k.lower(): v for k, v in _config().items()}).collect_budget_seconds
    assert budget_seconds < template["spec"]["timeoutSeconds"] <= 600


@pytest.mark.parametrize("ksvc", _knative_services(), ids=_name)
def test_service_has_requests_within_limits(ksvc: dict) -> None:
    resources = _container(ksvc)["resources"]
    assert cpu_millicores(resources["requests"]["cpu"]) <= cpu_millicores(resources["limits"]["cpu"])
    assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(resources["limits"]["memory"])


@pytest.mark.parametrize("ksvc", _knative_services(), ids=_name)
def test_service_runs_as_the_image_user_without_privileges(ksvc: dict) -> None:
    context = _container(ksvc)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
    assert ksvc["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001, "the volumes must be writable"


def test_only_the_services_calling_kubernetes_get_a_token() -> None:
    for ksvc in _knative_services():
        spec = ksvc["spec"]["template"]["spec"]
        if ksvc["metadata"]["name"] in ("collect", "health"):
            assert spec["serviceAccountName"] == SERVICE_ACCOUNT
        else:
            assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec


def test_every_service_is_cluster_local() -> None:
    for ksvc in _knative_services():
        assert ksvc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local", _name(ksvc)


def test_services_sharing_the_data_volume_are_pinned_to_one_node() -> None:
    for ksvc in _knative_services():
        spec = ksvc["spec"]["template"]["spec"]
        claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
        assert DATA_CLAIM in claims, f"{_name(ksvc)} does not mount the database"
        (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        labels = ksvc["spec"]["template"]["metadata"]["labels"]
        assert term["labelSelector"]["matchLabels"].items() <= labels.items(), \
            f"{_name(ksvc)} must match its own affinity term, or the first pod can never schedule"


def test_health_serves_its_probe_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container = _container(_one(*KSVC, "health"))
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "k8s_metrics.db"))
    connect(tmp_path / "k8s_metrics.db").close()  # a current schema, as readiness requires
    client = functions_framework.create_app("health", str(REPO / "functions/health/main.py")).test_client()
    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert client.get(path).status_code == 200, f"{probe} {path}"
    others = [s for s in _knative_services() if s["metadata"]["name"] != "health"]
    assert not any(p in _container(s) for s in others for p in ("livenessProbe", "readinessProbe"))


def _needed_feature_flags() -> set[str]:
    flags: set[str] = set()
    for ksvc in _knative_services():
        flags |= feature_flags_used(ksvc, CRD_SCHEMAS[KSVC])
        spec = ksvc["spec"]["template"]["spec"]
        claims = {v["name"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
        if any(m["name"] in claims and not m.get("readOnly") for m in _container(ksvc)["volumeMounts"]):
            flags.add("kubernetes.podspec-persistent-volume-write")
    return flags


def _documented_feature_flags() -> set[str]:
    readme = readme_section("### Knative feature flags")  # the PostgreSQL install has its own, shorter one
    match = re.search(r"kubectl patch configmap/config-features -n knative-serving --type merge -p '([^']+)'", readme)
    assert match, "README.md has no `kubectl patch configmap/config-features` command under Knative feature flags"
    data = json.loads(match.group(1))["data"]
    assert set(data.values()) == {"enabled"}
    return set(data)


def test_readme_enables_exactly_the_knative_feature_flags_the_services_use() -> None:
    assert _needed_feature_flags() == _documented_feature_flags()


# --- eventing --------------------------------------------------------------------------------------------------

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def cron_problems(schedule: str) -> list[str]:
    """What is wrong with a PingSource schedule (five cron fields, numeric, or a descriptor)."""
    if schedule in _CRON_DESCRIPTORS:
        return []
    fields = schedule.split()
    if len(fields) != 5:
        return [f"{len(fields)} fields, expected 5"]
    problems = []
    for text, (what, low, high) in zip(fields, _CRON_FIELDS):
        for item in text.split(","):
            match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", item)
            if not match:
                problems.append(f"{what}: {item!r} is not *, N, N-M or a /step of them")
                continue
            numbers = [int(n) for n in match.group(2, 3) if n is not None]
            if any(not low <= n <= high for n in numbers) or (len(numbers) == 2 and numbers[0] > numbers[1]):
                problems.append(f"{what}: {item!r} is outside {low}-{high}")
            if match.group(4) is not None and int(match.group(4)) == 0:
                problems.append(f"{what}: a step of 0")
    return problems


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 2 * * *", "0,30 8-18 * * 1-5", "@daily"])
def test_cron_check_accepts_valid_schedules(schedule: str) -> None:
    assert cron_problems(schedule) == []


@pytest.mark.parametrize("schedule", ["*/5 * * *", "60 * * * *", "0 24 * * *", "*/0 * * * *", "5-1 * * * *",
                                      "0 2 * * MON-"])
def test_cron_check_rejects_invalid_schedules(schedule: str) -> None:
    assert cron_problems(schedule) != []


def _sink_target(sink: dict) -> dict:
    ref = sink["ref"]
    assert "uri" not in sink, "a sink refers to an object of the kustomization, not a fixed URL"
    assert ref.get("namespace", NAMESPACE) == NAMESPACE
    return _one(ref["apiVersion"], ref["kind"], ref["name"])


def test_ping_sources_fire_on_schedule_into_their_functions() -> None:
    sources = {s["metadata"]["name"]: s["spec"] for s in _objects("sources.knative.dev/v1", "PingSource")}
    assert {name: spec["schedule"] for name, spec in sources.items()} == {
        "collect-schedule": "*/5 * * * *", "backup-schedule": "0 2 * * *"}
    for name, spec in sources.items():
        assert cron_problems(spec["schedule"]) == [], name
        assert not ("data" in spec and "dataBase64" in spec), f"{name}: data and dataBase64 exclude each other"
        if "data" in spec:
            assert isinstance(json.loads(spec["data"]), dict), f"{name}: the functions take a JSON object"
    assert _sink_target(sources["collect-schedule"]["sink"])["metadata"]["name"] == "collect"
    assert _sink_target(sources["backup-schedule"]["sink"])["metadata"]["name"] == "backup"


def test_collect_schedule_matches_the_collection_interval() -> None:
    schedule = _one("sources.knative.dev/v1", "PingSource", "collect-schedule")["spec"]["schedule"]
    minute, *rest = schedule.split()
    assert rest == ["*"] * 4 and minute.startswith("*/"), "interval check understands only */N minute schedules"
    assert int(minute[2:]) * 60 == int(_config()["COLLECT_INTERVAL_SECONDS"])


def test_triggers_deliver_each_alert_event_type_to_alert_notify() -> None:
    triggers = _objects("eventing.knative.dev/v1", "Trigger")
    brokers = {b["metadata"]["name"] for b in _objects("eventing.knative.dev/v1", "Broker")}
    types = []
    for trigger in triggers:
        spec = trigger["spec"]
        assert spec["broker"] in brokers, f"{_name(trigger)}: broker {spec['broker']} is not in knative/"
        assert set(spec["filter"]["attributes"]) == {"type"}, "filter attributes are an exact-match AND"
        types.append(spec["filter"]["attributes"]["type"])
        assert _sink_target(spec["subscriber"])["metadata"]["name"] == "alert-notify"
    assert sorted(types) == sorted(ALERT_EVENT_TYPES)


def test_sink_binding_points_collect_at_the_broker() -> None:
    (binding,) = _objects("sources.knative.dev/v1", "SinkBinding")
    subject = binding["spec"]["subject"]
    assert (subject["apiVersion"], subject["kind"], subject["name"]) == (*KSVC, "collect")
    assert _sink_target(binding["spec"]["sink"])["kind"] == "Broker"
    assert _one("v1", "Namespace", NAMESPACE)["metadata"]["labels"]["bindings.knative.dev/include"] == "true"


# --- RBAC --------------------------------------------------------------------------------------------------------


def _bound_rules(objects: list[dict]) -> list[tuple[str | None, dict]]:
    """(namespace the rule applies in, None = cluster-wide) for every rule bound to our ServiceAccount."""
    rules = []
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        for binding in _objects("rbac.authorization.k8s.io/v1", kind, objects):
            subjects = {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}
            assert subjects == {("ServiceAccount", SERVICE_ACCOUNT, NAMESPACE)}, _name(binding)
            assert binding["roleRef"]["kind"] == role_kind
            role = _one("rbac.authorization.k8s.io/v1", role_kind, binding["roleRef"]["name"], objects)
            scope = role["metadata"].get("namespace")
            rules.extend((scope, rule) for rule in role["rules"])
    return rules


def _allows(rule: dict, verb: str, group: str, resource: str, name: str | None) -> bool:
    return (group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
            and ("resourceNames" not in rule or name in rule["resourceNames"]))


def _object_name(path: str, resource: str) -> str | None:
    parts = path.split("?")[0].strip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == resource else None


Call = tuple[str, str, str, "str | None", "str | None"]  # verb, group, resource, namespace, object name


def recorded_calls(cluster) -> set[Call]:  # type: ignore[no-untyped-def]
    return {(r.verb, r.group, r.resource, r.namespace, _object_name(r.path, r.resource)) for r in cluster.kube.requests}


def rbac_gaps(calls: set[Call], rules: list[tuple[str | None, dict]]) -> tuple[list[Call], list[tuple]]:
    """(calls no rule allows, permissions no call uses)."""
    uncovered = [call for call in calls if not any(
        scope in (None, call[3]) and _allows(rule, call[0], call[1], call[2], call[4]) for scope, rule in rules)]
    unused = [(rule_group, resource, verb, name)
              for _, rule in rules for rule_group in rule["apiGroups"] for resource in rule["resources"]
              for verb in rule["verbs"] for name in rule.get("resourceNames", [None])
              if not any(_allows({"apiGroups": [rule_group], "resources": [resource], "verbs": [verb],
                                  **({"resourceNames": [name]} if name else {})}, c[0], c[1], c[2], c[4])
                         for c in calls)]
    return sorted(uncovered, key=str), unused


def test_rbac_grants_exactly_the_api_calls_the_code_makes(tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    """Knative: `collect` and `health` are the Services with the ServiceAccount's token."""
    from shared.domain.trigger import Trigger
    from shared.entry.collect import collect_once
    from shared.ops.health import check_health

    collect = _one(*KSVC, "collect")
    field_paths = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
                   for e in _env(collect).values() if "valueFrom" in e}
    assert field_paths == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    settings = make_settings(tmp_path, cluster, pod_name="collect-00001-deployment-7d9c8-x2x4z",
                             pod_namespace=collect["metadata"]["namespace"], lease_name=_config()["LEASE_NAME"])
    body, status = collect_once(settings, Trigger("http"))
    assert (status, body["status"]) == (200, "ok"), body
    check_health(settings)

    uncovered, unused = rbac_gaps(recorded_calls(cluster), _bound_rules(ALL_OBJECTS))
    assert uncovered == [], "API calls the deployed ServiceAccount may not make"
    assert unused == [], "permissions granted that the code never uses"


def _ok_runs(database: Path) -> int:
    """The `ok` runs stored so far; 0 while the server is still creating or migrating the database."""
    if not database.exists():
        return 0
    try:
        conn = connect(database, readonly=True)
    except SchemaOutdated:
        return 0
    try:
        return conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
    finally:
        conn.close()


def test_rbac_grants_exactly_the_api_calls_serve_makes(tmp_path: Path, cluster) -> None:  # type: ignore[no-untyped-def]
    """The plain install: the Deployment's container, run as the image runs it (tests/image.py),
    collects on its schedule and on demand, answers /health, backs up and reports; every request it
    sends to the API server is recorded and held against the RBAC of kubernetes/."""
    import requests

    objects = list(build(KUBERNETES_OVERLAY))
    deployment = _one(*DEPLOYMENT, JOB, objects)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT and pod.get("automountServiceAccountToken", True)
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    cluster_env = {"KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
                   "PROMETHEUS_URL": cluster.prometheus_url}
    downward_api = {"metadata.name": "k8s-resource-monitor-6d8f7c9b5-x2x4z", "metadata.namespace": NAMESPACE}
    with running_container(tmp_path, pod, config_maps, cluster_env, downward_api) as url:
        deadline = time.monotonic() + 30
        while _ok_runs(tmp_path / "data" / "k8s_metrics.db") == 0:  # the schedule's first collection
            assert time.monotonic() < deadline, "serve stored no collection"
            time.sleep(0.2)
        headers = {"Connection": "close"}
        while True:  # the scheduled run stores its row before its retention pass lets the lock go
            collected = requests.post(f"{url}/collect", json={}, headers=headers, timeout=60)
            if collected.json()["status"] != "skipped" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (collected.status_code, collected.json()["status"]) == (200, "ok"), collected.text
        assert requests.get(f"{url}/health", headers=headers, timeout=30).json()["kubernetes_status"] == "healthy"
        assert requests.post(f"{url}/backup", json={}, headers=headers, timeout=60).status_code == 200
        assert requests.get(f"{url}/report?format=json", headers=headers, timeout=30).status_code == 200

    calls = recorded_calls(cluster)
    assert ("update", "coordination.k8s.io", "leases", NAMESPACE, config_maps["k8s-resource-monitor-config"][
        "LEASE_NAME"]) in calls, "serve collects under the Lease in its namespace"
    uncovered, unused = rbac_gaps(calls, _bound_rules(objects))
    assert uncovered == [], "API calls the deployed ServiceAccount may not make"
    assert unused == [], "permissions granted that the code never uses"


# --- Prometheus and Grafana ------------------------------------------------------------------------------------------


def _rule_groups() -> list[dict]:
    return _one("monitoring.coreos.com/v1", "PrometheusRule", "k8s-resource-monitor")["spec"]["groups"]


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    if not prometheus_available():
        pytest.fail("promtool is not installed (scripts/ensure-system-packages installs it)")
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": _rule_groups()}))
    result = _promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in _rule_groups() for r in g["rules"]}
    assert alerts == {"K8sResourceMonitorDown", "K8sResourceMonitorHighMemory", "CollectionFailed",
                      "CollectionStale", "BackupMissing"}


_JOB_SERIES = f'job="{JOB}", instance="10.0.0.7:8012"'
_ALERT_TESTS = [  # (input series, eval time, alert, expected labels besides alertname), one minute apart
    ([(f"up{{{_JOB_SERIES}}}", "1x10 0x20")], "8m", "K8sResourceMonitorDown", []),
    ([(f"up{{{_JOB_SERIES}}}", "1x10 0x20")], "20m", "K8sResourceMonitorDown",
     [{"severity": "critical", "job": JOB, "instance": "10.0.0.7:8012"}]),
    ([], "10m", "K8sResourceMonitorDown", [{"severity": "critical", "job": JOB}]),
    ([(f"collection_errors_total{{{_JOB_SERIES}, status=\"failed\"}}", "0x30")], "30m", "CollectionFailed", []),
    ([(f"collection_errors_total{{{_JOB_SERIES}, status=\"failed\"}}", "0+1x30")], "30m", "CollectionFailed",
     [{"severity": "warning"}]),
    ([(f"collection_errors_total{{{_JOB_SERIES}, status=\"partial\"}}", "0+1x30"),  # Prometheus down
      (f"collection_errors_total{{{_JOB_SERIES}, status=\"failed\"}}", "0x30")], "30m", "CollectionFailed", []),
    ([(f"last_successful_collection_timestamp_seconds{{{_JOB_SERIES}}}", "60x40")], "12m", "CollectionStale", []),
    ([(f"last_successful_collection_timestamp_seconds{{{_JOB_SERIES}}}", "60x40")], "30m", "CollectionStale",
     [{"severity": "warning"}]),
    ([('container_memory_working_set_bytes{namespace="monitoring", pod="collect-00001-deployment-x", '
       'container="collect"}', "1000000000x30"),
      ('container_spec_memory_limit_bytes{namespace="monitoring", pod="collect-00001-deployment-x", '
       'container="collect"}', "1073741824x30")],
     "20m", "K8sResourceMonitorHighMemory",
     [{"severity": "warning", "namespace": "monitoring", "pod": "collect-00001-deployment-x", "container": "collect"}]),
    ([('container_memory_working_set_bytes{namespace="monitoring", pod="report-00001-deployment-x", '
       'container="report"}', "500000000x30"),
      ('container_spec_memory_limit_bytes{namespace="monitoring", pod="report-00001-deployment-x", '
       'container="report"}', "1073741824x30")],
     "20m", "K8sResourceMonitorHighMemory", []),
    ([('container_memory_working_set_bytes{namespace="monitoring", pod="k8s-resource-monitor-6d8f7-x2x4z", '
       'container="serve"}', "1500000000x30"),  # the plain install's one container, near its 1536Mi
      ('container_spec_memory_limit_bytes{namespace="monitoring", pod="k8s-resource-monitor-6d8f7-x2x4z", '
       'container="serve"}', "1610612736x30")],
     "20m", "K8sResourceMonitorHighMemory",
     [{"severity": "warning", "namespace": "monitoring", "pod": "k8s-resource-monitor-6d8f7-x2x4z",
       "container": "serve"}]),
]


def test_alert_rules_fire_when_they_should_and_not_before(tmp_path: Path) -> None:
    """promtool unit tests of each rule's expression, `for` and labels. Annotations are templates
    checked by `promtool check rules`; they are left out here so the expected alerts stay readable."""
    groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
              for g in _rule_groups()]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
              "alert_rule_test": [{"eval_time": at, "alertname": alert,
                                   "exp_alerts": [{"exp_labels": labels} for labels in expected]}]}
             for series, at, alert, expected in _ALERT_TESTS]
    backup_test = {"interval": "2m", "input_series": [  # within the 5-minute lookback of every evaluation
        {"series": f"backup_last_success_timestamp_seconds{{{_JOB_SERIES}}}", "values": "0x900"}],
        "alert_rule_test": [
            {"eval_time": "26h", "alertname": "BackupMissing", "exp_alerts": []},
            {"eval_time": "28h", "alertname": "BackupMissing",
             "exp_alerts": [{"exp_labels": {"severity": "warning"}}]}]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [*tests, backup_test]}))
    result = _promtool("test", "rules", tmp_path / "tests.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


_PROMQL_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                              "and", "or", "unless", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: identifiers outside label matchers, ranges and
    strings, that are neither functions, keywords nor the label lists of by/on/ignoring."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        word = match.group(0)
        if following.startswith("(") or word.lower() in _PROMQL_KEYWORDS:
            continue
        if re.search(r"\d$", text[:match.start()]):  # the unit of a number, as in 5m
            continue
        names.add(word)
    return names


def test_metric_name_parser_reads_names_not_labels_or_functions() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket'
            '{job="x", endpoint=~"a|b"}[5m]))) / on (job) group_left up > 3 * 300')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}


def _exposed_metric_names(tmp_path: Path, cluster, monkeypatch: pytest.MonkeyPatch) -> set[str]:  # type: ignore[no-untyped-def]
    """Series names the health function's /metrics lists after a collection (families without
    samples count: a table without rows still declares its metric)."""
    from shared.domain.trigger import Trigger
    from shared.entry.collect import collect_once

    settings = make_settings(tmp_path, cluster)
    assert collect_once(settings, Trigger("http"))[1] == 200
    monkeypatch.setenv("DATABASE_PATH", str(settings.database_path))
    client = functions_framework.create_app("health", str(REPO / "functions/health/main.py")).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count")}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total")
            names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))  # type: ignore[union-attr]
    return names


# dashboard file in common/base -> the ConfigMap carrying it
DASHBOARDS = {"grafana-dashboard.json": "k8s-resource-monitor-dashboard",
              "grafana-resources.json": "k8s-resource-monitor-resources-dashboard"}


def _dashboard(name: str = "grafana-dashboard.json") -> dict[str, Any]:
    return json.loads((COMMON / "base" / name).read_text(encoding="utf-8"))


def _dashboard_queries(name: str = "grafana-dashboard.json") -> list[str]:
    return [t["expr"] for p in _dashboard(name)["panels"] for t in p.get("targets", ())]


def _variable_metrics(name: str) -> set[str]:
    """The metrics the dashboard's template variables list label values of."""
    return {re.match(r"label_values\((\w+)", v["definition"]).group(1)  # type: ignore[union-attr]
            for v in _dashboard(name)["templating"]["list"] if v["type"] == "query"}


def test_alert_rules_and_dashboard_read_only_metrics_that_exist(tmp_path: Path, cluster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("METRICS_WORKLOAD_GAUGES", "true")  # the per-workload gauges are off by default
    exposed = _exposed_metric_names(tmp_path, cluster, monkeypatch)
    for dashboard in DASHBOARDS:
        dashboard_names = set().union(*map(metric_names, _dashboard_queries(dashboard)), _variable_metrics(dashboard))
        assert dashboard_names - exposed == set(), f"{dashboard}: queries of metrics /metrics does not list"
    rule_names = set().union(*(metric_names(r["expr"]) for g in _rule_groups() for r in g["rules"]))
    assert rule_names - exposed - CADVISOR_METRICS - PROMETHEUS_METRICS == set()
    wanted = {"http_requests_total", "collection_duration_seconds", "pods_collected_total", "collection_errors_total",
              "database_size_bytes", "last_successful_collection_timestamp_seconds", "notifications_sent_total"}
    assert wanted <= set().union(*map(metric_names, _dashboard_queries())), "the health dashboard's required panels"
    resources = {f"report_{resource}_{figure}_{unit}" for resource, unit in (("cpu", "cores"), ("memory", "bytes"))
                 for figure in ("requested", "used", "idle")}
    resources |= {"report_risk_flags", "report_workload_cpu_recommended_cores",
                  "report_workload_memory_recommended_bytes", "report_workload_series_dropped",
                  "report_idle_cost_per_month", "report_savings_per_month", "report_cluster_savings_per_month"}
    assert resources <= set().union(*map(metric_names, _dashboard_queries("grafana-resources.json"))), \
        "the resource dashboard's required panels"


@pytest.mark.parametrize("dashboard", DASHBOARDS)
def test_dashboard_queries_are_valid_promql(tmp_path: Path, dashboard: str) -> None:
    """Grafana's $__rate_interval stands for a duration and $cluster, $namespace for a regex;
    promtool parses each query as a rule."""
    rules = [{"record": f"dashboard:query:{i}",
              "expr": expr.replace("$__rate_interval", "5m").replace("$cluster", ".*").replace("$namespace", ".*")}
             for i, expr in enumerate(_dashboard_queries(dashboard))]
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", tmp_path / "queries.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dashboard", DASHBOARDS)
def test_dashboard_imports_in_grafana_10_with_a_prometheus_input(dashboard: str) -> None:
    board = _dashboard(dashboard)
    assert board["schemaVersion"] >= 38 and board["id"] is None and board["uid"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource", "provisioned copies resolve ${DS_PROMETHEUS} by it"
    panels = board["panels"]
    assert {p["type"] for p in panels} <= {"timeseries", "stat", "table"}
    assert {p["type"] for p in panels} <= {r["id"] for r in board["__requires"] if r["type"] == "panel"}
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert all(t["datasource"] == panel["datasource"] and t["refId"] for t in panel["targets"])
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24
        mine = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not mine & cells, f"panel {panel['title']} overlaps another"
        cells |= mine
    expressions = " ".join(_dashboard_queries(dashboard))
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert f"${variable['name']}" in expressions, f"no panel uses ${variable['name']}"
    if "cluster" in variables:  # one Grafana, the monitors of several clusters: every panel follows the choice
        assert all("$cluster" in expr for expr in _dashboard_queries(dashboard))
    assert f'job="{JOB}"' in expressions


def test_the_resource_dashboard_reads_each_figure_once_across_health_instances() -> None:
    """Every health instance serves the same figures from the database: panels take one of them
    (max by their labels) before adding namespaces up, or a second instance would double the totals."""
    for expr in _dashboard_queries("grafana-resources.json"):
        for metric in metric_names(expr):
            assert re.search(rf"max by \([^)]*\) \({metric}\{{", expr), expr


@pytest.mark.parametrize(("dashboard", "config_map"), DASHBOARDS.items())
def test_dashboard_config_map_carries_the_json_for_grafanas_sidecar(dashboard: str, config_map: str) -> None:
    carried = _one("v1", "ConfigMap", config_map)
    assert carried["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(carried["data"][dashboard]) == _dashboard(dashboard)


def test_prometheus_scrapes_the_health_pod_as_job_k8s_resource_monitor() -> None:
    service = _one("v1", "Service", JOB)
    assert service["spec"]["selector"] == {"serving.knative.dev/service": "health"}
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == 8012, "the queue-proxy port, in front of the function"
    monitor = _one("monitoring.coreos.com/v1", "ServiceMonitor", JOB)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")
    assert "jobLabel" not in monitor["spec"], "the job label is the Service's name, which the rules expect"
    health = _one(*KSVC, "health")["spec"]["template"]["metadata"]["annotations"]
    assert health["autoscaling.knative.dev/min-scale"] == "1", "a scaled-to-zero health has no target to scrape"
