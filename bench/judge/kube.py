"""The namespace through the project's kubectl: one reading of its objects (with managedFields), the
Incidents, the pods of a workload, and putting the namespace back as it was before a run."""
from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable

from localkube.cluster import Cluster

from .objects import TRACKED, Snapshot, from_items, state
from .podnet import PodNet

# The operator's ConfigMap of its own actions (operator/sre_operator/domain/snapshot.py), named here:
# the judge imports nothing of the operator.
ACTION_LEDGER = "sre-operator-actions"

PORTS = {"order": 5001, "product": 5002, "payment": 5003, "gateway": 8080}
KINDS = "deployments,services,configmaps,secrets,pods"


class KubeError(RuntimeError):
    pass


class Kube:
    def __init__(self, cluster: Cluster, namespace: str, podnet: PodNet | None = None) -> None:
        self.cluster, self.namespace, self.podnet = cluster, namespace, podnet

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        out = self.cluster.kubectl(*args, "-n", self.namespace, input=stdin, check=False, timeout=timeout)
        if check and out.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def items(self, kinds: str) -> list[dict]:
        return json.loads(self.kubectl("get", kinds, "-o", "json", "--show-managed-fields"))["items"]

    def read(self, probe: Iterable[str] = ()) -> Snapshot:
        at = time.time()
        items = self.items(KINDS)
        snap = from_items(at, items)
        for workload in probe:
            for p in snap.pods_of(workload):
                ip = (p.get("status") or {}).get("podIP")
                if ip and self.podnet is not None:
                    snap.probes[p["metadata"]["name"]] = self.probe_pod(workload, ip)
        return snap

    def probe_pod(self, workload: str, ip: str) -> dict:
        assert self.podnet is not None
        port = PORTS.get(workload, 80)
        if workload == "gateway":
            code, _ = self.podnet.request("GET", f"http://{ip}:{port}/nginx-health")
            return {"health": code, "fault": None}
        code, _ = self.podnet.request("GET", f"http://{ip}:{port}/health")
        fcode, fault = self.podnet.request("GET", f"http://{ip}:{port}/fault")
        return {"health": code, "fault": fault if fcode == 200 and isinstance(fault, dict) else None}

    def pods(self, workload: str) -> list[dict]:
        snap = from_items(time.time(), self.items("pods"))
        out = []
        for p in snap.pods_of(workload):
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            out.append({"name": p["metadata"]["name"], "uid": p["metadata"]["uid"],
                        "ip": (p.get("status") or {}).get("podIP"),
                        "restarts": sum(int(s.get("restartCount", 0)) for s in statuses)})
        return out

    def incidents(self) -> list[dict]:
        return json.loads(self.kubectl("get", "incidents.sre.stratus.dev", "-o", "json"))["items"]

    def delete_incidents(self) -> None:
        for name in self.kubectl("get", "incidents.sre.stratus.dev", "-o", "name", check=False).split():
            self.kubectl("patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
            self.kubectl("delete", name, "--wait=false", check=False)

    def delete_action_ledger(self) -> None:
        """The operator's record of its own actions (its per-workload rate limit counts them over an
        hour): each run is a trial of its own, so no run inherits the actions of the runs before it."""
        self.kubectl("delete", "configmap", ACTION_LEDGER, "--ignore-not-found", check=False)

    # -- restore ---------------------------------------------------------------------------------

    @staticmethod
    def clean_copy(obj: dict) -> dict:
        """The object as it can be created again: no server-set metadata, no status, no allocated IPs."""
        o = copy.deepcopy(obj)
        meta = o["metadata"]
        o["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
        o["metadata"].get("annotations", {}).pop("deployment.kubernetes.io/revision", None)
        o.pop("status", None)
        if o.get("kind") == "Service":
            for k in ("clusterIP", "clusterIPs"):
                o["spec"].pop(k, None)
        return o

    def restore(self, golden: Snapshot) -> list[str]:
        """Put every tracked object back to its state in `golden` (created if missing, replaced if its
        state differs) and delete tracked objects that did not exist then. Returns what it did."""
        done = []
        now = self.read()
        for key, obj in sorted(golden.objects.items()):
            cur = now.objects.get(key)
            if cur is not None and state(cur) == state(obj):
                continue
            body = self.clean_copy(obj)
            if cur is None:
                self.kubectl("create", "-f", "-", stdin=json.dumps(body))
                done.append(f"created {key[0]}/{key[1]}")
            else:
                self.replace(body)
                done.append(f"replaced {key[0]}/{key[1]}")
        for key in sorted(set(now.objects) - set(golden.objects)):
            if key[0] in TRACKED:
                self.kubectl("delete", key[0].lower(), key[1], "--wait=false", check=False)
                done.append(f"deleted {key[0]}/{key[1]}")
        return done

    def replace(self, body: dict, tries: int = 5) -> None:
        """`kubectl replace`, again after a moment when the object changed under it (Conflict: a
        controller wrote it between the reading and the write)."""
        for attempt in range(tries):
            try:
                self.kubectl("replace", "-f", "-", stdin=json.dumps(body))
            except KubeError as exc:
                if "Conflict" not in str(exc) or attempt == tries - 1:
                    raise
                time.sleep(1.0)
            else:
                return

    def settle(self, deployments: Iterable[str], timeout: float = 90) -> list[str]:
        """Wait for every rollout; a workload whose pods stay stuck (a pod that cannot start any more
        although its spec is right again) gets its pods replaced once."""
        stuck = []
        for d in deployments:
            out = self.cluster.kubectl("rollout", "status", f"deployment/{d}", "-n", self.namespace,
                                       f"--timeout={int(timeout)}s", check=False, timeout=timeout + 10)
            if out.returncode != 0:
                self.kubectl("delete", "pod", "-l", f"app.kubernetes.io/name={d}", "--wait=false", check=False)
                again = self.cluster.kubectl("rollout", "status", f"deployment/{d}", "-n", self.namespace,
                                             f"--timeout={int(timeout)}s", check=False, timeout=timeout + 10)
                if again.returncode != 0:
                    stuck.append(d)
        return stuck
