"""The unit tier's one stand-in for the Kubernetes API: an in-memory `domain.ports.Cluster`.

It keeps objects as the API server would hand them out (uid, resourceVersion, generation bumped on
a spec change, creationTimestamp, one managedFields entry per write with its time), applies JSON
and merge patches as the server does, and refuses what the server refuses (a patch of a missing
object, a create over an existing one, a JSON patch op on a missing path). `controllers()` plays
the parts of the Deployment and ReplicaSet controllers the operator relies on: a ReplicaSet per
template with its revision, pods that are Ready (unless `broken` says otherwise), Deployment status.

Time is the fake's own clock (`tick(seconds)`), so tests of windows and ages run in no time; pass
`clock` to the code under test where it asks for one. `fail_next(n, status)` makes the next n
calls raise `ClusterError(status)`, to test retries and a killed operator. `writes` records every
write (verb, kind, name, body) for assertions.

`pod_proxy` plays the shop's fault hooks (`services/shop/common/faults.py`) behind the API server's
pod proxy: each pod's process state lives in `hooks` (by pod uid: a pod replaced starts clean), read
with `hook_state(namespace, pod)`; `proxied` records every call; a pod in `hookless` answers 404 as a
shop without SHOP_FAULT_HOOKS does; a missing pod is the API server's 404 (ClusterError)."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sre_operator.domain.ports import ClusterError, Obj, PatchType

REVISION = "deployment.kubernetes.io/revision"


def without_nulls(value: Any) -> Any:
    """As the API server stores a custom resource: a field whose value is null is dropped, at any
    depth (inside lists too), unless its schema says `nullable` (none of ours does)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict) and p in doc:
            doc = doc[p]
        else:
            raise ClusterError(422, f"path /{'/'.join(parts)} does not exist")
    return doc


def json_patch(doc: Obj, ops: list[dict[str, Any]]) -> Obj:
    """RFC 6902 add/replace/remove/test, as the API server applies them (all or nothing)."""
    out = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].strip("/").split("/")]
        parent = _walk(out, parts[:-1])
        last = parts[-1]
        if op["op"] == "test":
            if _walk(out, parts) != op["value"]:
                raise ClusterError(422, f"test failed at {op['path']}")
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if op["op"] == "add" and last == "-":
                    parent.append(copy.deepcopy(op["value"]))
                elif op["op"] == "add":
                    parent.insert(int(last), copy.deepcopy(op["value"]))
                else:
                    parent[int(last)] = copy.deepcopy(op["value"])
            else:
                if op["op"] == "replace" and last not in parent:
                    raise ClusterError(422, f"replace: {op['path']} does not exist")
                parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            elif last in parent:
                del parent[last]
            else:
                raise ClusterError(422, f"remove: {op['path']} does not exist")
        else:
            raise ClusterError(422, f"unsupported op {op['op']}")
    return out


def clean_hooks() -> dict[str, Any]:
    return {"crashed": False, "latency_ms": 0, "cpu_ms": 0, "leak_kb": 0}


# The shop's /fault endpoints: (method, path) -> what the call does to the process's state.
_HOOKS: dict[tuple[str, str], Any] = {
    ("POST", "/fault/crash"): lambda s, _b: s.update(crashed=True),
    ("DELETE", "/fault/crash"): lambda s, _b: s.update(crashed=False),
    ("POST", "/fault/latency"): lambda s, b: s.update(latency_ms=int(b["ms"])),
    ("POST", "/fault/cpu"): lambda s, b: s.update(cpu_ms=int(b["ms"])),
    ("POST", "/fault/leak"): lambda s, b: s.update(leak_kb=int(b["kb"])),
    ("DELETE", "/fault"): lambda s, _b: s.update(latency_ms=0, cpu_ms=0, leak_kb=0),
}


class MemoryCluster:
    """An in-memory `Cluster` (see the module's docstring)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.now = start or dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
        self.versions = itertools.count(1)
        self.writes: list[tuple[str, str, str, object]] = []
        self.pod_logs: dict[tuple[str, str], str] = {}
        self._failures: list[int] = []
        self.broken: set[str] = set()  # Deployments whose new pods never become Ready
        self.crashing: set[str] = set()  # Deployments whose new pods crash-loop (never Ready either)
        self.refused: dict[str, ClusterError] = {}  # kind → the error every patch of it gets
        self.hooks: dict[str, dict[str, Any]] = {}  # pod uid -> its process's fault state
        self.proxied: list[tuple[str, str, int, str, str, object]] = []  # (ns, pod, port, method, path, body)
        self.hookless: set[str] = set()  # pods whose process has no /fault endpoints
        self.list_calls = 0  # list_objects calls (one namespace each)
        self.list_all_calls = 0  # list_all calls (every namespace)
        self.all_namespaces_refused = False  # list_all answers 403, as to a Role per namespace

    # -- the fake's clock and failure injection --------------------------------------------

    def clock(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        self._failures += [status] * count

    def _maybe_fail(self) -> None:
        if self._failures:
            raise ClusterError(self._failures.pop(0), "injected failure")

    # -- the port ---------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self._maybe_fail()
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str, labels: Mapping[str, str] | None = None) -> list[Obj]:
        self._maybe_fail()
        self.list_calls += 1
        out = []
        for (k, ns, _), obj in sorted(self.objects.items()):
            have = obj["metadata"].get("labels") or {}
            if k == kind and ns == namespace and all(have.get(a) == b for a, b in (labels or {}).items()):
                out.append(copy.deepcopy(obj))
        return out

    def list_all(self, kind: str, labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        """Every namespace's, as the adapter hands them out (storage order: `namespace/name`;
        managedFields without field sets, no last-applied copy); `list_all_calls` counts the calls."""
        self._maybe_fail()
        self.list_all_calls += 1
        if self.all_namespaces_refused:
            raise ClusterError(403, "Forbidden")
        out = []
        for (k, _ns, _name), obj in sorted(self.objects.items(), key=lambda kv: f"{kv[0][1]}/{kv[0][2]}"):
            have = obj["metadata"].get("labels") or {}
            if k == kind and all(have.get(a) == b for a, b in (labels or {}).items()):
                lean = copy.deepcopy(obj)
                meta = lean["metadata"]
                meta["managedFields"] = [{f: m[f] for f in ("manager", "operation", "time", "subresource") if f in m}
                                         for m in meta.get("managedFields") or []]
                (meta.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
                out.append(lean)
        return iter(out)

    def create(self, kind: str, namespace: str, body: Obj) -> Obj:
        self._maybe_fail()
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = (
                meta["generateName"]
                + hashlib.sha1(str(next(self.versions)).encode(), usedforsecurity=False).hexdigest()[:5]
            )
        key = (kind, namespace, meta["name"])
        if key in self.objects:
            raise ClusterError(409, f"{kind} {namespace}/{meta['name']} already exists")
        obj["kind"] = kind
        meta.update(namespace=namespace, uid=f"uid-{next(self.versions)}", creationTimestamp=self.stamp(),
                    generation=1)
        self._written(obj, "create", "Update")
        self.objects[key] = obj
        self.writes.append(("create", kind, meta["name"], copy.deepcopy(body)))
        return copy.deepcopy(obj)

    def refuse_patches(self, kind: str, status: int, reason: str) -> None:
        """From now on every patch of `kind` is refused as the API server refuses an invalid one."""
        self.refused[kind] = ClusterError(status, reason)

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        self._maybe_fail()
        if kind in self.refused:
            raise self.refused[kind]
        key = (kind, namespace, name)
        if key not in self.objects:
            raise ClusterError(404, f"{kind} {namespace}/{name} not found")
        before = self.objects[key]
        if patch_type == "json":
            if not isinstance(body, list):
                raise ClusterError(400, "a json patch is a list of operations")
            after = json_patch(before, body)
        else:
            if not isinstance(body, dict):
                raise ClusterError(400, "a merge patch is an object")
            after = merge_patch(before, body)
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = int(before["metadata"].get("generation", 1)) + 1
        self._written(after, "patch", "Update")
        self.objects[key] = after
        self.writes.append(("patch", kind, name, copy.deepcopy(body)))

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        self._maybe_fail()
        key = (kind, namespace, name)
        if key not in self.objects:
            raise ClusterError(404, f"{kind} {namespace}/{name} not found")
        obj = self.objects[key]
        obj["status"] = without_nulls(merge_patch(obj.get("status") or {}, status))
        self._written(obj, "status", "Update", subresource="status")
        self.writes.append(("patch_status", kind, name, copy.deepcopy(status)))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._maybe_fail()
        if self.objects.pop((kind, namespace, name), None) is None:
            raise ClusterError(404, f"{kind} {namespace}/{name} not found")
        self.writes.append(("delete", kind, name, None))

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        self._maybe_fail()
        text = self.pod_logs.get((pod, container))
        if text is None:
            raise ClusterError(404, f"no log for {pod}/{container}")
        return "\n".join(text.splitlines()[-lines:])

    def pod_proxy(self, namespace: str, pod: str, port: int, method: str, path: str,
                  body: Obj | None = None) -> tuple[int, str]:
        self._maybe_fail()
        obj = self.objects.get(("Pod", namespace, pod))
        if obj is None:
            raise ClusterError(404, f'pods "{pod}" not found')
        self.proxied.append((namespace, pod, port, method, path, copy.deepcopy(body)))
        if pod in self.hookless:
            return 404, '{"detail":"Not Found"}'
        state = self.hooks.setdefault(obj["metadata"]["uid"], clean_hooks())
        answer = _HOOKS.get((method, path))
        if answer is None:
            return 404, '{"detail":"Not Found"}'
        answer(state, body or {})
        return 200, json.dumps(state)

    def hook_state(self, namespace: str, pod: str) -> dict[str, Any]:
        """The fault state of the pod's process now (clean when never touched)."""
        obj = self.objects[("Pod", namespace, pod)]
        return dict(self.hooks.get(obj["metadata"]["uid"], clean_hooks()))

    def _written(self, obj: Obj, manager: str, operation: str, subresource: str | None = None) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self.versions))
        entry = {"manager": manager, "operation": operation, "time": self.stamp()}
        if subresource:
            entry["subresource"] = subresource
        meta["managedFields"] = [*(meta.get("managedFields") or [])[-4:], entry]

    # -- controllers ------------------------------------------------------------------------

    def controllers(self) -> None:
        """One pass of the Deployment and ReplicaSet controllers over every Deployment."""
        for (kind, ns, name), dep in list(self.objects.items()):
            if kind == "Deployment":
                self._reconcile(ns, name, dep)

    def _reconcile(self, ns: str, name: str, dep: Obj) -> None:
        template = dep["spec"]["template"]
        digest = hashlib.sha1(json.dumps(template, sort_keys=True).encode(), usedforsecurity=False).hexdigest()[:10]
        mine = [o for (k, n, _), o in self.objects.items() if k == "ReplicaSet" and n == ns
                and any(r.get("name") == name for r in o["metadata"].get("ownerReferences") or [])]
        current = next((r for r in mine if r["metadata"]["labels"].get("pod-template-hash") == digest), None)
        top = max((int(r["metadata"]["annotations"][REVISION]) for r in mine), default=0)
        if current is None:
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
            current = self.create("ReplicaSet", ns, {
                "metadata": {"name": f"{name}-{digest}", "labels": dict(tmpl["metadata"]["labels"]),
                             "annotations": {REVISION: str(top + 1)},
                             "ownerReferences": [{"kind": "Deployment", "name": name}]},
                "spec": {"replicas": 0, "template": tmpl}})
        elif int(current["metadata"]["annotations"][REVISION]) != top:
            current["metadata"]["annotations"][REVISION] = str(top + 1)
        rev = current["metadata"]["annotations"][REVISION]
        self.objects[("Deployment", ns, name)]["metadata"].setdefault("annotations", {})[REVISION] = rev
        want = int(dep["spec"].get("replicas", 1))
        pods = [
            o
            for (k, n, _), o in self.objects.items()
            if k == "Pod"
            and n == ns
            and any(
                r.get("name") == current["metadata"]["name"]
                for r in o["metadata"].get("ownerReferences") or []
            )
        ]
        # The old ReplicaSets' pods go; the current one's pods come, Ready unless the Deployment is broken.
        for (k, n, pname), o in list(self.objects.items()):
            if k == "Pod" and n == ns and o["metadata"]["labels"].get("app.kubernetes.io/name") == name \
                    and o not in pods:
                del self.objects[(k, n, pname)]
        ready = name not in self.broken and name not in self.crashing
        crash = {"waiting": {"reason": "CrashLoopBackOff"}} if name in self.crashing else None
        for i in range(len(pods), want):
            self.create("Pod", ns, {
                "metadata": {"name": f"{current['metadata']['name']}-{i}{next(self.versions)}",
                             "labels": dict(current["spec"]["template"]["metadata"]["labels"]),
                             "ownerReferences": [{"kind": "ReplicaSet", "name": current["metadata"]["name"]}]},
                "spec": copy.deepcopy(current["spec"]["template"]["spec"]),
                "status": {"phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                           "containerStatuses": [{"name": c["name"], "ready": ready,
                                                  "restartCount": 3 if crash else 0,
                                                  "state": crash or {"running": {}}}
                                                 for c in current["spec"]["template"]["spec"]["containers"]]}})
        for extra in pods[want:]:
            del self.objects[("Pod", ns, extra["metadata"]["name"])]
        n_ready = want if ready else 0
        self.objects[("Deployment", ns, name)]["status"] = {
            "observedGeneration": dep["metadata"].get("generation", 1), "replicas": want, "updatedReplicas": want,
            "readyReplicas": n_ready, "availableReplicas": n_ready}


def deployment(name: str, namespace: str = "shop", replicas: int = 1, env: dict[str, str] | None = None,
               config_map: str | None = None, port: int = 5000) -> Obj:
    """A shop Deployment as the chart makes it (labels, one container, an optional ConfigMap volume)."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
    spec: Obj = {"containers": [{"name": name, "image": f"sre-operator/shop-{name}:0.1.0",
                                 "ports": [{"name": "http", "containerPort": port}],
                                 "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}
    if config_map:
        spec["volumes"] = [{"name": "config", "configMap": {"name": config_map}}]
    return {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "strategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": spec}}}


def service(name: str, port: int, namespace: str = "shop") -> Obj:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]}}


def shop(cluster: MemoryCluster, namespace: str = "shop") -> MemoryCluster:
    """The shop's Deployments, Services and the gateway's ConfigMap, reconciled once."""
    conf = ("upstream order { server order:5001; }\nupstream product { server product:5002; }\n"
            "upstream payment { server payment:5003; }\nserver {\n  listen 8080;\n"
            "  location /api/orders { proxy_pass http://order; }\n"
            "  location /api/products { proxy_pass http://product; }\n"
            "  location /api/payments { proxy_pass http://payment; }\n}\n")
    cluster.create("ConfigMap", namespace, {"metadata": {"name": "gateway-config",
                                                          "labels": {"app.kubernetes.io/part-of": "shop"}},
                                             "data": {"nginx.conf": conf}})
    for name, port in (("order", 5001), ("product", 5002), ("payment", 5003)):
        cluster.create("Deployment", namespace, deployment(name, namespace, port=port))
        cluster.create("Service", namespace, service(name, port, namespace))
    cluster.create("Deployment", namespace, deployment("gateway", namespace, config_map="gateway-config", port=8080))
    cluster.create("Service", namespace, service("gateway", 80, namespace))
    cluster.controllers()
    return cluster
