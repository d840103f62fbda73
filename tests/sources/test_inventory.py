"""Pod JSON from the API becomes small records: the containers that run, with what they ask for."""

import msgspec

from shared.sources.inventory import parse_pod
from shared.sources.kube_objects import Pod


def test_native_sidecars_count_and_init_containers_do_not():
    pod = parse_pod(msgspec.convert({
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1",
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9", "controller": True}]},
        "spec": {
            "nodeName": "node-a",
            "initContainers": [
                {"name": "migrate", "resources": {"requests": {"cpu": "1"}}},
                {"name": "proxy", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            ],
            "containers": [{"name": "app", "resources": {"requests": {"cpu": "0.5"}, "limits": {"memory": "1Gi"}}}],
        },
        "status": {
            "phase": "Running", "qosClass": "Burstable",
            "initContainerStatuses": [{"name": "proxy", "restartCount": 2}],
            "containerStatuses": [{"name": "app", "restartCount": 1,
                                   "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}],
        },
    }, Pod))
    assert [c.name for c in pod.containers] == ["proxy", "app"]
    proxy, app = pod.containers
    assert (proxy.cpu_request_millicores, proxy.memory_request_bytes, proxy.restart_count) == (100, 64 * 2**20, 2)
    assert (app.cpu_request_millicores, app.memory_limit_bytes, app.cpu_limit_millicores) == (500, 2**30, None)
    assert (app.restart_count, app.last_termination_reason) == (1, "OOMKilled")
    assert (pod.owner_kind, pod.owner_name, pod.node, pod.qos_class) == ("ReplicaSet", "web-7d9", "node-a", "Burstable")
