"""The `standard` StorageClass's provisioner (kind's default name; provisioner `rancher.io/local-path`
as on kind): a claim the scheduler has placed on this node (annotation
`volume.kubernetes.io/selected-node`) gets a hostPath PersistentVolume under the node's data dir,
bound to it by the controller-manager; a released volume of ours is deleted with its directory."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .kubeapi import ApiError

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("localkube.node")
PROVISIONER = "rancher.io/local-path"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def pv_for(claim: dict, node: str, root: Path) -> dict:
    meta, spec = claim["metadata"], claim["spec"]
    name = f"pvc-{meta['uid']}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER,
                                                   "localkube.io/path": str(root / name)}},
        "spec": {"capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                 "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": spec.get("storageClassName"),
                 "volumeMode": spec.get("volumeMode", "Filesystem"),
                 "hostPath": {"path": str(root / name), "type": "DirectoryOrCreate"},
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                              "name": meta["name"], "uid": meta["uid"]},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
    }


def sync_once(agent: Agent, classes: set[str]) -> None:
    root = agent.data / "pv"
    claims = agent.api.get("/api/v1/persistentvolumeclaims").get("items", [])
    for claim in claims:
        meta, spec = claim["metadata"], claim["spec"]
        if spec.get("volumeName") or spec.get("storageClassName") not in classes:
            continue
        if (meta.get("annotations") or {}).get(SELECTED_NODE) != agent.node_name or meta.get("deletionTimestamp"):
            continue
        pv = pv_for(claim, agent.node_name, root)
        path = root / pv["metadata"]["name"]
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(0o777)  # as local-path-provisioner: any user of the claim may write it
        try:
            agent.api.create("/api/v1/persistentvolumes", pv)
            log.info("provisioned %s for %s/%s", pv["metadata"]["name"], meta["namespace"], meta["name"])
        except ApiError as exc:
            if exc.status != 409:
                raise
    for pv in agent.api.get("/api/v1/persistentvolumes").get("items", []):
        ann = pv["metadata"].get("annotations") or {}
        if ann.get("pv.kubernetes.io/provisioned-by") != PROVISIONER or "localkube.io/path" not in ann:
            continue
        if pv.get("status", {}).get("phase") == "Released" and \
                pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            path = Path(ann["localkube.io/path"])
            if path.parent == root:
                shutil.rmtree(path, ignore_errors=True)
            try:
                agent.api.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            except ApiError as exc:
                if exc.status != 404:
                    raise


def run(agent: Agent, period: float = 1.0) -> None:
    while not agent.stop.is_set():
        try:
            scs = agent.api.get("/apis/storage.k8s.io/v1/storageclasses").get("items", [])
            classes = {sc["metadata"]["name"] for sc in scs if sc.get("provisioner") == PROVISIONER}
            if classes:
                sync_once(agent, classes)
        except Exception as exc:  # noqa: BLE001 - the API server may be restarting
            log.warning("provisioner: %s", exc)
        time.sleep(period)
