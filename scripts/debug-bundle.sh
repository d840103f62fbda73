#!/usr/bin/env bash
# The cluster side of a k8s-resource-monitor problem report, in one folder and one .tar.gz:
# the Knative Services and their Revisions, the PingSources, Broker, Triggers and SinkBinding (or the
# Deployment of the plain install), `describe` of each, the logs of every container (and of its
# previous instance, after a crash or an OOM kill), the namespace's events, the ConfigMaps, the
# Secrets' names (never their values), RBAC, nodes and their usage (kubectl top), and
# `k8s-monitor diagnose` run in the health pod (Knative) or the serve pod (plain Kubernetes).
# A command that fails (no metrics-server, no Knative Eventing, no permission) is noted in its file
# and the bundle goes on. Needs kubectl, pointed at the cluster (KUBECONFIG / current context).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: scripts/debug-bundle.sh [-n NAMESPACE] [-l SELECTOR] [-o DIR] [--tail LINES]

  -n, --namespace NAMESPACE   where the monitor runs (default: monitoring)
  -l, --selector SELECTOR     label selector of the monitor's objects
                              (default: app.kubernetes.io/part-of=k8s-resource-monitor)
  -o, --output DIR            folder to write (default: ./k8s-monitor-debug-YYYYmmdd_HHMMSS, UTC);
                              DIR.tar.gz is written beside it
      --tail LINES            log lines per container (default: 1000)
EOF
}

NAMESPACE=monitoring
SELECTOR=app.kubernetes.io/part-of=k8s-resource-monitor
OUTPUT="./k8s-monitor-debug-$(date -u +%Y%m%d_%H%M%S)"
TAIL=1000
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--namespace) NAMESPACE=${2:?"$1 needs a value"}; shift 2 ;;
    -l|--selector) SELECTOR=${2:?"$1 needs a value"}; shift 2 ;;
    -o|--output) OUTPUT=${2:?"$1 needs a value"}; shift 2 ;;
    --tail) TAIL=${2:?"$1 needs a value"}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "debug-bundle: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$TAIL" in ''|*[!0-9]*) echo "debug-bundle: --tail needs a number, got: $TAIL" >&2; exit 2 ;; esac
command -v kubectl >/dev/null 2>&1 || { echo "debug-bundle: kubectl is not on PATH" >&2; exit 1; }

OUTPUT=${OUTPUT%/}
mkdir -p "$OUTPUT/logs" || exit 1
failures=0

# capture FILE ARGS...: `kubectl ARGS` into FILE (stdout and stderr), noting a failure in the file.
capture() {
  local file=$1 status=0
  shift
  kubectl "$@" >"$OUTPUT/$file" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "# 'kubectl $*' exited with status $status" >>"$OUTPUT/$file"
    failures=$((failures + 1))
  fi
}

# append FILE ARGS...: like capture, under a header, so one file can hold several lists.
append() {
  local file=$1 status=0
  shift
  echo "### kubectl $*" >>"$OUTPUT/$file"
  kubectl "$@" >>"$OUTPUT/$file" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "# exited with status $status" >>"$OUTPUT/$file"
    failures=$((failures + 1))
  fi
  echo >>"$OUTPUT/$file"
}

scope=(-n "$NAMESPACE" -l "$SELECTOR")
knative_kinds=(ksvc revisions routes configurations pingsources brokers triggers sinkbindings)

echo "collecting k8s-resource-monitor debug information from namespace $NAMESPACE ($SELECTOR) into $OUTPUT"
capture version.txt version
for kind in "${knative_kinds[@]}" deployments replicasets pods services persistentvolumeclaims \
  serviceaccounts roles rolebindings; do
  append resources.txt get "$kind" "${scope[@]}" -o wide
done
append rbac.txt get clusterroles,clusterrolebindings -l "$SELECTOR" -o wide
append rbac.txt auth can-i --list -n "$NAMESPACE" --as "system:serviceaccount:$NAMESPACE:k8s-resource-monitor"

for kind in ksvc revisions pingsources brokers triggers sinkbindings deployments pods persistentvolumeclaims; do
  capture "describe-$kind.txt" describe "$kind" "${scope[@]}"
done
# The Services' specs (traffic split, image, env references) and the eventing wiring, as applied.
capture ksvc.yaml get ksvc "${scope[@]}" -o yaml
capture eventing.yaml get pingsources,brokers,triggers,sinkbindings "${scope[@]}" -o yaml
capture knative-config-features.yaml get configmap config-features -n knative-serving -o yaml

capture events.txt get events -n "$NAMESPACE" --sort-by=.lastTimestamp
capture configmaps.yaml get configmaps "${scope[@]}" -o yaml
# Names, types and key counts only: the table output carries no values.
capture secrets.txt get secrets "${scope[@]}"

capture nodes.txt get nodes -o wide
capture nodes-usage.txt top nodes
capture pods-usage.txt top pods "${scope[@]}" --containers

# Logs of every container of every pod, and of the instance before it when there was one.
pods=$(kubectl get pods "${scope[@]}" \
  -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.containers[*].name}{"\n"}{end}' 2>/dev/null)
while read -r pod containers; do
  [ -n "$pod" ] || continue
  for container in $containers; do
    capture "logs/$pod.$container.log" logs -n "$NAMESPACE" "$pod" -c "$container" --tail="$TAIL" --timestamps
    if ! kubectl logs -n "$NAMESPACE" "$pod" -c "$container" --previous --tail="$TAIL" --timestamps \
      >"$OUTPUT/logs/$pod.$container.previous.log" 2>/dev/null; then
      rm -f "$OUTPUT/logs/$pod.$container.previous.log"  # no earlier instance of this container
    fi
  done
done <<<"$pods"

# The monitor's own diagnosis, from inside a pod that has the database and the service account:
# the health pod on Knative, else the serve pod of the plain install (kubernetes/).
running_pod() {
  kubectl get pods -n "$NAMESPACE" -l "$1" --field-selector=status.phase=Running -o name 2>/dev/null | head -n 1
}
diagnose_pod=$(running_pod serving.knative.dev/service=health)
diagnose_container=health
if [ -z "$diagnose_pod" ]; then
  diagnose_pod=$(running_pod app.kubernetes.io/name=k8s-resource-monitor,app.kubernetes.io/component=server)
  diagnose_container=serve
fi
if [ -n "$diagnose_pod" ]; then
  in_pod=(exec -n "$NAMESPACE" "$diagnose_pod" -c "$diagnose_container" --)
  capture diagnose.txt "${in_pod[@]}" python -m shared diagnose --output /tmp
  archive=$(sed -n 's/^archive: //p' "$OUTPUT/diagnose.txt" | tail -n 1)
  if [ -n "$archive" ]; then
    capture "$(basename "$archive")" "${in_pod[@]}" cat "$archive"
    kubectl "${in_pod[@]}" rm -f "$archive" >/dev/null 2>&1
  fi
else
  echo "no running health or serve pod in $NAMESPACE: k8s-monitor diagnose was not run" >"$OUTPUT/diagnose.txt"
fi

tar -czf "$OUTPUT.tar.gz" -C "$(dirname "$OUTPUT")" "$(basename "$OUTPUT")"
echo "debug information collected in $OUTPUT and $OUTPUT.tar.gz ($failures kubectl command(s) exited non-zero: see the files)"
echo "secrets are listed by name only; still, read the bundle before you share it (logs and ConfigMaps are as they are)"
