"""Pure: one reading of the shop's namespace, and what in each object counts as its state.

A Snapshot holds the objects the benchmark compares before and after a run (Deployments, Services,
ConfigMaps, Secrets), the pods, and the results of probing the pods it was asked to probe (health and
the /fault state, read from inside the node's network namespace)."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

TRACKED = ("Deployment", "Service", "ConfigMap", "Secret")
# Bookkeeping that is nobody's fault or fix: the API server's CA copy, Helm's release records, the
# operator's own records (its known-good copies, its lease).
IGNORED_PREFIXES = ("kube-root-ca.crt", "sh.helm.release.", "sre-operator")

Key = tuple[str, str]  # (kind, name)


@dataclass
class Snapshot:
    at: float
    objects: dict[Key, dict] = field(default_factory=dict)
    pods: list[dict] = field(default_factory=list)
    probes: dict[str, dict] = field(default_factory=dict)  # pod name → {"health": code, "fault": {...}|None}

    def get(self, kind: str, name: str) -> dict | None:
        return self.objects.get((kind, name))

    def deployment(self, name: str) -> dict | None:
        return self.get("Deployment", name)

    def pods_of(self, deployment: str) -> list[dict]:
        """Pods owned by the Deployment's ReplicaSets (named `<deployment>-<hash>`), not terminating."""
        out = []
        for p in self.pods:
            owner = next((o["name"] for o in p["metadata"].get("ownerReferences") or [] if o["kind"] == "ReplicaSet"),
                         None)
            if owner and owner.rsplit("-", 1)[0] == deployment and not p["metadata"].get("deletionTimestamp"):
                out.append(p)
        return out


def tracked(obj: dict) -> bool:
    return obj.get("kind") in TRACKED and not obj["metadata"]["name"].startswith(IGNORED_PREFIXES)


def from_items(at: float, items: Iterable[dict], probes: dict[str, dict] | None = None) -> Snapshot:
    snap = Snapshot(at=at, probes=dict(probes or {}))
    for obj in items:
        if obj.get("kind") == "Pod":
            snap.pods.append(obj)
        elif tracked(obj):
            snap.objects[(obj["kind"], obj["metadata"]["name"])] = obj
    return snap


def state(obj: dict) -> dict:
    """What counts as an object's state: what its owner sets, not what controllers report. A restart
    (an annotation on the pod template) is a change of state."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Deployment":
        template = copy.deepcopy(spec.get("template") or {})
        return {"replicas": spec.get("replicas", 1), "strategy": spec.get("strategy"),
                "selector": spec.get("selector"), "template": template}
    if kind == "Service":
        ports = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec.get("ports") or []]
        return {"type": spec.get("type"), "selector": spec.get("selector"), "ports": ports}
    if kind in ("ConfigMap", "Secret"):
        return {"data": obj.get("data") or {}, "binaryData": obj.get("binaryData") or {}}
    return {"spec": spec}


def diff_paths(a: object, b: object, path: str = "", limit: int = 8) -> list[str]:
    """Dotted paths where a and b differ (lists of named items by name), at most `limit` of them."""
    out: list[str] = []

    def walk(x: object, y: object, p: str) -> None:
        if len(out) >= limit or x == y:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                walk(x.get(k), y.get(k), f"{p}.{k}" if p else str(k))
            return
        if isinstance(x, list) and isinstance(y, list) and all(
                isinstance(i, dict) and "name" in i for i in [*x, *y]) and (x or y):
            xs, ys = {i["name"]: i for i in x}, {i["name"]: i for i in y}
            if len(xs) == len(x) and len(ys) == len(y):
                for k in sorted(set(xs) | set(ys)):
                    walk(xs.get(k), ys.get(k), f"{p}[{k}]")
                return
        out.append(p or "(whole)")

    walk(a, b, path)
    return out


def container(deploy: dict, name: str | None = None) -> dict:
    ctrs = deploy["spec"]["template"]["spec"]["containers"]
    return next((c for c in ctrs if c["name"] == name), ctrs[0]) if name else ctrs[0]


def env_value(deploy: dict, var: str, ctr: str | None = None) -> str | None:
    return next((e.get("value") for e in container(deploy, ctr).get("env") or [] if e["name"] == var), None)


def pod_ready(pod: dict) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def rollout_complete(deploy: dict) -> tuple[bool, str]:
    spec, st = deploy.get("spec") or {}, deploy.get("status") or {}
    want = spec.get("replicas", 1)
    if st.get("observedGeneration", 0) < deploy["metadata"].get("generation", 0):
        return False, "rollout not observed yet"
    for what in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if st.get(what, 0) < want:
            return False, f"{what} {st.get(what, 0)}/{want}"
    if st.get("replicas", 0) > want:
        return False, f"{st.get('replicas')} pods for {want} replicas (old ones still there)"
    return True, ""


def workload_serving(snap: Snapshot, name: str, min_replicas: int = 1) -> tuple[bool, str]:
    """The Deployment exists with at least `min_replicas`, its rollout is complete, every pod of it is
    Ready, and every pod the benchmark probed answered its health check with no runtime fault set."""
    d = snap.deployment(name)
    if d is None:
        return False, f"deployment {name} missing"
    if (d["spec"].get("replicas", 1)) < min_replicas:
        return False, f"{name} has {d['spec'].get('replicas')} replicas < {min_replicas}"
    done, why = rollout_complete(d)
    if not done:
        return False, f"{name}: {why}"
    pods = snap.pods_of(name)
    if not pods:
        return False, f"{name}: no pods"
    for p in pods:
        pname = p["metadata"]["name"]
        if not pod_ready(p):
            return False, f"{name}: pod {pname} not Ready"
        probe = snap.probes.get(pname)
        if probe is None:
            continue
        if probe.get("health") != 200:
            return False, f"{name}: pod {pname} health answered {probe.get('health')}"
        fault = probe.get("fault") or {}
        active = {k: v for k, v in fault.items() if k in ("crashed", "latency_ms", "cpu_ms", "leak_kb") and v}
        if active:
            return False, f"{name}: pod {pname} has a runtime fault {active}"
    return True, ""
