"""kwok nodes for scale tests: fake Nodes whose pods only exist in the API (kwok plays their
kubelet), kept apart from the process node by a label (`type=kwok`) and a taint
(`kwok.x-k8s.io/node=fake:NoSchedule`), so only pods that tolerate it and select it land there.

kwok runs as one more process in the node namespace, recorded in the cluster's state so `down`
stops it. Its stages (how a fake node turns Ready and a fake pod Running) are ours, below."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import Cluster

ANNOTATION = "kwok.x-k8s.io/node"
LABEL = {"type": "kwok"}
TAINT = {"key": ANNOTATION, "value": "fake", "effect": "NoSchedule"}
# Fake nodes' addresses: inside the node namespace's private range, never configured or reached.
NODE_IP = "172.30.1.1"

STAGES = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: localkube-node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Ready, status: "True", reason: KubeletReady, message: "kwok fake node",
         lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      allocatable: {{ YAML .status.capacity 1 }}
      capacity: {{ YAML .status.capacity 1 }}
      nodeInfo: {kubeletVersion: "fake", kubeProxyVersion: "fake", operatingSystem: linux, architecture: amd64,
                 containerRuntimeVersion: "kwok", kernelVersion: "", osImage: "", machineID: "", systemUUID: "",
                 bootID: ""}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: localkube-pod-running}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Pending]}
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      {{ range list "PodReadyToStartContainers" "Initialized" "Ready" "ContainersReady" }}
      - {type: {{ . }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0,
         state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      {{ with NodeIPWith .spec.nodeName }}
      hostIP: {{ . | Quote }}
      {{ end }}
      {{ with PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace }}
      podIP: {{ . | Quote }}
      podIPs: [{ip: {{ . | Quote }}}]
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: localkube-pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    delete: true
"""


def find_kwok() -> bool:
    from .binaries import KWOK
    return KWOK.complete()


def argv(kwok_bin: str, kubeconfig: str, stages: str) -> list[str]:
    return [kwok_bin, f"--kubeconfig={kubeconfig}", f"--config={stages}",
            f"--manage-nodes-with-annotation-selector={ANNOTATION}=fake", f"--node-ip={NODE_IP}",
            "--node-lease-duration-seconds=40", "--server-address="]


def node(name: str, pods: int = 250) -> dict:
    cap = {"cpu": "32", "memory": "256Gi", "pods": str(pods)}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {ANNOTATION: "fake"},
                         "labels": {**LABEL, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64"}},
            "spec": {"taints": [TAINT]},
            "status": {"capacity": cap, "allocatable": cap}}


def add_nodes(cluster: Cluster, count: int, prefix: str = "kwok-node", pods: int = 250) -> list[str]:
    """Create `count` fake nodes (kwok must be running: `Cluster.start_kwok`)."""
    names = [f"{prefix}-{i}" for i in range(count)]
    cluster.apply("\n---\n".join(json.dumps(node(n, pods)) for n in names))
    return names


# Tolerations and selector a workload needs to run on the kwok nodes (and only there).
ON_KWOK = {"nodeSelector": LABEL, "tolerations": [{"key": ANNOTATION, "operator": "Exists", "effect": "NoSchedule"}]}
