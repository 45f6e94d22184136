"""The Node object and its heartbeat: registration with capacity, the InternalIP address and the
kubelet endpoint, Ready conditions, and the Lease in kube-node-lease renewed every 10 s (a Node
whose Lease goes stale is marked NotReady by the controller-manager after ~40 s)."""
from __future__ import annotations

import datetime as dt
import os
import platform

from .kubeapi import ApiError, KubeApi

KUBELET_VERSION = "v1.36.4"
LEASE_SECONDS = 40
KUBELET_PORT = 10250


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def capacity(max_pods: int = 110) -> dict[str, str]:
    mem_kib = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    st = os.statvfs("/")
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "pods": str(max_pods),
            "ephemeral-storage": f"{st.f_blocks * st.f_frsize // 1024}Ki"}


def node_object(name: str, pod_cidr: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/control-plane": "", "localkube.io/node": "process"}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
    }


def node_status(ip: str) -> dict:
    t = now()
    cap = capacity()
    conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
              "message": "localkube node agent is posting ready status"}]
    for ctype, reason in (("MemoryPressure", "KubeletHasSufficientMemory"),
                          ("DiskPressure", "KubeletHasNoDiskPressure"), ("PIDPressure", "KubeletHasSufficientPID")):
        conds.append({"type": ctype, "status": "False", "reason": reason, "message": ""})
    for c in conds:
        c.update(lastHeartbeatTime=t, lastTransitionTime=t)
    return {"status": {
        "capacity": cap, "allocatable": cap, "conditions": conds,
        "addresses": [{"type": "InternalIP", "address": ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "localkube://processes",
                     "kernelVersion": platform.release(), "osImage": "localkube process node",
                     "machineID": "", "systemUUID": "", "bootID": ""}}}


def register(api: KubeApi, name: str, ip: str, pod_cidr: str) -> None:
    if api.get_or_none(f"/api/v1/nodes/{name}") is None:
        try:
            api.create("/api/v1/nodes", node_object(name, pod_cidr))
        except ApiError as exc:
            if exc.status != 409:
                raise
    post_status(api, name, ip)


def post_status(api: KubeApi, name: str, ip: str) -> None:
    # Conditions are a list: a merge patch replaces it whole, which is what we want.
    api.merge_patch(f"/api/v1/nodes/{name}/status", node_status(ip))


def renew_lease(api: KubeApi, name: str) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now_micro()}
    if api.get_or_none(path) is None:
        node = api.get(f"/api/v1/nodes/{name}")
        owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
        try:
            api.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                       {"metadata": {"name": name, "namespace": "kube-node-lease", "ownerReferences": [owner]},
                        "spec": spec})
        except ApiError as exc:
            if exc.status != 409:
                raise
        else:
            return
    api.merge_patch(path, {"spec": spec})
