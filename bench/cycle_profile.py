"""The detector's cycle over many namespaces, offline: no cluster, the operator's own code from the
Kubernetes adapter's HTTP calls up.

A server process on 127.0.0.1 answers the cluster-wide list calls the detector makes (paged with
`limit`/`continue`, by label selector, items in storage order, JSON as the API server writes it:
compact, streamed in chunks) from objects shaped as the API server hands them out: the shop chart
rendered by `helm template` as bench/scale.py renders it, with what the API server and its
controllers add (defaults, uid, resourceVersion, managedFields, status; pods as kwok's stage leaves
them, with the service-account volume). The operator's `Kube` adapter, configured to that server,
is read by `detector_loop` itself with the `remember` the operator gives it, for a few cycles.

Modes:
- `down`: Prometheus does not answer, as in bench/scale.py (Kubernetes signals only, nothing is
  recorded as known-good);
- `healthy`: every namespace healthy by its figures, each with its known-good record up to date,
  as in a steady production cycle (every namespace's record re-derived; nothing to write).

Prints per run the cycles' wall and CPU seconds (this process: decoding and deciding; the server
is another process), the memory, the writes, and with `--profile` cProfile's top functions (the
cycle run with the namespaces decided in the reading thread, so one profile sees all of it).
Writes JSON. Usage:
  python bench/cycle_profile.py [--sizes 100,1000] [--modes down,healthy] [--cycles 3] [--profile]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sre-operator"}
KNOWN_GOOD = "sre-operator-known-good"
ON_KWOK = {"nodeSelector": {"type": "kwok"},
           "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}
# Collections: kind → (list path, list kind, apiVersion).
COLLECTIONS = {
    "Deployment": ("/apis/apps/v1/deployments", "DeploymentList", "apps/v1"),
    "Pod": ("/api/v1/pods", "PodList", "v1"),
    "Service": ("/api/v1/services", "ServiceList", "v1"),
    "ConfigMap": ("/api/v1/configmaps", "ConfigMapList", "v1"),
    "Incident": ("/apis/sre.stratus.dev/v1alpha1/incidents", "IncidentList", "sre.stratus.dev/v1alpha1"),
}
CHUNK = 4096  # what Go's HTTP server writes a chunk at a time (its response buffer)


# -- objects as the API server hands them out --------------------------------------------------------

def chart_docs() -> list[dict[str, Any]]:
    """The shop chart as bench/scale.py creates it on kwok (helm template, same values)."""
    from localkube.binaries import find_binary
    out = subprocess.run([str(find_binary("helm")), "template", "shop", str(ROOT / "charts" / "shop"),
                          "--set", "persistence.enabled=false", "--set", "gateway.service.type=ClusterIP",
                          "--set-json", f"nodeSelector={json.dumps(ON_KWOK['nodeSelector'])}",
                          "--set-json", f"tolerations={json.dumps(ON_KWOK['tolerations'])}"],
                         capture_output=True, text=True, check=True, timeout=120)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def fields_v1(value: Any) -> dict[str, Any]:
    """A managedFields `fieldsV1` set for `value` (associative lists keyed by name, or port)."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            keyed = {}
            for x in v:
                key = ({"name": x["name"]} if "name" in x else
                       {f: x[f] for f in ("containerPort", "port", "protocol", "type", "key") if f in x})
                keyed[f"k:{json.dumps(key, separators=(',', ':'))}"] = {".": {}, **fields_v1(x)}
            out[f"f:{k}"] = keyed
        elif isinstance(v, dict) and v:
            out[f"f:{k}"] = ({".": {}} if k not in ("spec", "metadata", "status") else {}) | fields_v1(v)
        else:
            out[f"f:{k}"] = {}
    return out


def managed(manager: str, at: str, fields: dict[str, Any], subresource: str | None = None,
            api_version: str = "v1") -> dict[str, Any]:
    entry = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": at,
             "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    return entry


def container_defaults(c: dict[str, Any]) -> dict[str, Any]:
    c = {**c, "imagePullPolicy": c.get("imagePullPolicy", "IfNotPresent"), "resources": c.get("resources", {}),
         "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    if c.get("ports"):
        c["ports"] = [{**p, "protocol": p.get("protocol", "TCP")} for p in c["ports"]]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            p = {"failureThreshold": 3, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1, **c[probe]}
            if "httpGet" in p:
                p["httpGet"] = {"scheme": "HTTP", **p["httpGet"]}
            c[probe] = p
    return c


def pod_spec_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    spec = {**spec, "containers": [container_defaults(c) for c in spec["containers"]],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": spec.get("securityContext", {}), "terminationGracePeriodSeconds": 30}
    if "initContainers" in spec:
        spec["initContainers"] = [container_defaults(c) for c in spec["initContainers"]]
    spec["volumes"] = [{**v, "configMap": {"defaultMode": 420, **v["configMap"]}} if "configMap" in v else v
                       for v in spec.get("volumes") or []]
    return spec


class Maker:
    """Server-side objects for namespace after namespace (deterministic: one seed)."""

    def __init__(self, docs: list[dict[str, Any]], seed: int = 1) -> None:
        self.docs, self.rng, self.rv = docs, random.Random(seed), 1000  # noqa: S311 - names, not secrets
        self.created = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)

    def stamp(self, seconds: float = 0) -> str:
        return (self.created + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def meta(self, doc: dict[str, Any], ns: str, **extra: Any) -> dict[str, Any]:
        self.rv += 1
        return {**doc["metadata"], "namespace": ns, "uid": self.uid(), "resourceVersion": str(self.rv),
                "creationTimestamp": self.stamp(), **extra}

    def deployment(self, doc: dict[str, Any], ns: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        spec = {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                **doc["spec"]}
        spec["template"] = {"metadata": doc["spec"]["template"]["metadata"],
                            "spec": pod_spec_defaults(doc["spec"]["template"]["spec"])}
        replicas = int(spec.get("replicas", 1))
        name = doc["metadata"]["name"]
        hashed = hashlib.sha256(json.dumps(spec["template"], sort_keys=True).encode()).hexdigest()[:10]
        rs_name = f"{name}-{hashed}"
        status = {"availableReplicas": replicas, "observedGeneration": 1, "readyReplicas": replicas,
                  "replicas": replicas, "updatedReplicas": replicas,
                  "conditions": [
                      {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                       "message": "Deployment has minimum availability.", "lastTransitionTime": self.stamp(3),
                       "lastUpdateTime": self.stamp(3)},
                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                       "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
                       "lastTransitionTime": self.stamp(1), "lastUpdateTime": self.stamp(3)}]} if replicas else {
            "observedGeneration": 1}
        revision = {"deployment.kubernetes.io/revision": "1"}
        meta = self.meta(doc, ns, generation=1, annotations={**doc["metadata"].get("annotations", {}), **revision})
        meta["managedFields"] = [
            managed("kubectl-create", self.stamp(), fields_v1({"metadata": doc["metadata"], "spec": spec}), None,
                    "apps/v1"),
            managed("kube-controller-manager", self.stamp(3),
                    fields_v1({"metadata": {"annotations": revision},
                               "status": status}), "status", "apps/v1")]
        dep = {"metadata": meta, "spec": spec, "status": status}
        rs_uid = self.uid()
        pods = [self.pod(dep, ns, rs_name, rs_uid, hashed) for _ in range(replicas)]
        return dep, pods

    def pod(self, dep: dict[str, Any], ns: str, rs_name: str, rs_uid: str, hashed: str) -> dict[str, Any]:
        template = dep["spec"]["template"]
        name = f"{rs_name}-{''.join(self.rng.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}"
        token = f"kube-api-access-{''.join(self.rng.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}"
        mount = {"name": token, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        spec = {**template["spec"], "nodeName": f"kwok-scale-{self.rng.randrange(21)}",
                "serviceAccountName": "default", "serviceAccount": "default", "enableServiceLinks": True,
                "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                "containers": [{**c, "volumeMounts": [*c.get("volumeMounts", []), mount]}
                               for c in template["spec"]["containers"]],
                "tolerations": [*template["spec"].get("tolerations", []),
                                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                 "tolerationSeconds": 300},
                                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}],
                "volumes": [*template["spec"].get("volumes", []),
                            {"name": token, "projected": {"defaultMode": 420, "sources": [
                                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                                                       "path": "ca.crt"}]}},
                                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]}
        ip = f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        status = {"phase": "Running", "qosClass": "BestEffort" if not any(
                      c.get("resources") for c in spec["containers"]) else "Burstable",
                  "startTime": self.stamp(2), "hostIP": "172.30.1.1", "hostIPs": [{"ip": "172.30.1.1"}],
                  "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                                  "lastTransitionTime": self.stamp(2)}
                                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                           "PodScheduled")],
                  "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True,
                                         "started": True, "restartCount": 0,
                                         "state": {"running": {"startedAt": self.stamp(2)}}}
                                        for c in spec["containers"]]}
        labels = {**template["metadata"].get("labels", {}), "pod-template-hash": hashed}
        meta = {"name": name, "generateName": f"{rs_name}-", "namespace": ns, "uid": self.uid(),
                "resourceVersion": str(self.rv + 1), "creationTimestamp": self.stamp(1), "labels": labels,
                "annotations": dict(template["metadata"].get("annotations", {})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid,
                                     "controller": True, "blockOwnerDeletion": True}]}
        if not meta["annotations"]:
            del meta["annotations"]
        self.rv += 1
        meta["managedFields"] = [
            managed("kube-controller-manager", self.stamp(1), fields_v1({"metadata": {
                k: meta[k] for k in ("generateName", "labels", "annotations", "ownerReferences") if k in meta},
                "spec": template["spec"]})),
            managed("kube-scheduler", self.stamp(1), fields_v1({"status": {"conditions": [
                {"type": "PodScheduled", "status": "True"}]}}), "status"),
            managed("kwok", self.stamp(2), fields_v1({"status": status}), "status")]
        return {"metadata": meta, "spec": spec, "status": status}

    def service(self, doc: dict[str, Any], ns: str) -> dict[str, Any]:
        ip = f"10.96.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        spec = {**doc["spec"], "clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                "type": doc["spec"].get("type", "ClusterIP"),
                "ports": [{"protocol": "TCP", "targetPort": p["port"], **p} for p in doc["spec"]["ports"]]}
        meta = self.meta(doc, ns)
        meta["managedFields"] = [managed("kubectl-create", self.stamp(), fields_v1(
            {"metadata": doc["metadata"], "spec": doc["spec"]}))]
        return {"metadata": meta, "spec": spec, "status": {"loadBalancer": {}}}

    def config_map(self, doc: dict[str, Any], ns: str) -> dict[str, Any]:
        meta = self.meta(doc, ns)
        meta["managedFields"] = [managed("kubectl-create", self.stamp(), fields_v1(
            {"metadata": doc["metadata"], "data": doc.get("data", {})}))]
        return {"metadata": meta, "data": doc.get("data", {})}

    def namespace(self, ns: str) -> dict[str, list[dict[str, Any]]]:
        """Every object of one namespace's shop, by kind (all of them: the server filters)."""
        out: dict[str, list[dict[str, Any]]] = {"Deployment": [], "Pod": [], "Service": [], "ConfigMap": []}
        for doc in self.docs:
            if doc["kind"] == "Deployment":
                dep, pods = self.deployment(doc, ns)
                out["Deployment"].append(dep)
                out["Pod"] += pods
            elif doc["kind"] == "Service":
                out["Service"].append(self.service(doc, ns))
            elif doc["kind"] == "ConfigMap":
                out["ConfigMap"].append(self.config_map(doc, ns))
        out["ConfigMap"].append(self.config_map({"metadata": {"name": "kube-root-ca.crt"},
                                                 "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n" + "A" * 1100}},
                                                ns))
        return out


def known_good_record(objects: dict[str, list[dict[str, Any]]], ns: str, maker: Maker) -> dict[str, Any]:
    """The namespace's known-good record as the operator leaves it when the shop has been healthy."""
    from sre_operator.adapters.kube import _lean
    from sre_operator.detection import known_good
    from sre_operator.detection.signals import service_problem

    def lean(kind: str) -> list[dict[str, Any]]:
        return [_lean(json.loads(json.dumps(o)), kind) for o in objects[kind]
                if (o["metadata"].get("labels") or {}).get(PART_OF) == "shop"]
    pods = lean("Pod")
    unreachable = {s["metadata"]["name"] for s in lean("Service") if service_problem(s, pods)}
    data = known_good.remember({}, config_maps=lean("ConfigMap"), deployments=lean("Deployment"),
                               services=lean("Service"), unreachable=unreachable, now=dt.datetime.now(dt.UTC))
    doc = {"metadata": {"name": KNOWN_GOOD, "labels": MANAGED_BY}, "data": data}
    return maker.config_map(doc, ns)


# -- the server --------------------------------------------------------------------------------------

def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Store:
    """Every object, encoded once, by collection in storage order; lists filtered by label selector."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.items: dict[str, list[tuple[str, str, dict[str, str], bytes]]] = {k: [] for k in COLLECTIONS}
        self.sizes = sizes  # kind → bytes of the objects the detector reads
        self.counts: dict[str, int] = {}  # kind → how many of them
        self.filtered: dict[tuple[str, str], list[bytes]] = {}
        self.writes = 0
        self.lock = threading.Lock()

    def add(self, kind: str, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        self.items[kind].append((m["namespace"], m["name"], dict(m.get("labels") or {}), compact(obj)))

    def sort(self) -> None:
        for items in self.items.values():
            items.sort(key=lambda it: (f"{it[0]}/", it[1]))

    def select(self, kind: str, selector: str) -> list[bytes]:
        with self.lock:
            if (kind, selector) not in self.filtered:
                wanted = dict(s.split("=", 1) for s in selector.split(",") if s)
                self.filtered[kind, selector] = [
                    raw for _, _, labels, raw in self.items[kind]
                    if all(labels.get(k) == v for k, v in wanted.items())]
            return self.filtered[kind, selector]

    def get(self, kind: str, ns: str, name: str) -> bytes | None:
        return next((raw for n, nm, _, raw in self.items[kind] if n == ns and nm == name), None)


def handler(store: Store, chunked: bool, ms_per_mb: float = 0.0) -> type[BaseHTTPRequestHandler]:
    by_path = {path: kind for kind, (path, _, _) in COLLECTIONS.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Go's server: no delayed-ACK stall between headers and body

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def answer(self, code: int, body: bytes | list[bytes]) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                data = b"".join(body) if isinstance(body, list) else body
                out = bytearray()
                for i in range(0, len(data), CHUNK):
                    part = data[i:i + CHUNK]
                    out += b"%x\r\n" % len(part) + part + b"\r\n"
                out += b"0\r\n\r\n"
                self.wfile.write(out)
            else:
                data = b"".join(body) if isinstance(body, list) else body
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            kind = by_path.get(url.path)
            if kind is None:
                parts = url.path.strip("/").split("/")  # api v1 namespaces NS configmaps NAME
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "configmaps":
                    raw = store.get("ConfigMap", parts[3], parts[5])
                    if raw is not None:
                        self.answer(200, raw)
                        return
                self.answer(404, compact({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                          "reason": "NotFound", "code": 404}))
                return
            items = store.select(kind, q.get("labelSelector", ""))
            start, limit = int(q.get("continue") or 0), int(q.get("limit") or 0) or len(items) or 1
            page, rest = items[start:start + limit], len(items) - start - limit
            meta: dict[str, Any] = {"resourceVersion": "999999"}
            if rest > 0:
                meta |= {"continue": str(start + limit), "remainingItemCount": rest}
            _, list_kind, api_version = COLLECTIONS[kind]
            head = compact({"kind": list_kind, "apiVersion": api_version, "metadata": meta})[:-1] + b',"items":['
            body = [head, b",".join(page), b"]}"]
            if ms_per_mb:  # the API server's own time to answer (selecting, encoding), as a wait
                time.sleep(sum(map(len, body)) / 1e6 * ms_per_mb / 1000)
            self.answer(200, body)

        def write(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b"{}"
            with store.lock:
                store.writes += 1
            self.answer(201 if self.command == "POST" else 200, body)

        do_POST = do_PATCH = do_PUT = write  # noqa: N815 - the base class's names

    return Handler


def build(docs: list[dict[str, Any]], namespaces: int, healthy: bool, incidents: int) -> Store:
    """The objects of `namespaces` shops (`healthy`: each with its known-good record) and
    `incidents` Incidents, encoded, in storage order."""
    maker = Maker(docs)
    store = Store({})
    counts: dict[str, int] = {}
    for i in range(namespaces):
        ns = f"scale-{i:04d}"
        objects = maker.namespace(ns)
        if healthy:
            objects["ConfigMap"].append(known_good_record(objects, ns, maker))
        for kind, objs in objects.items():
            for o in objs:
                store.add(kind, o)
                if (o["metadata"].get("labels") or {}).get(PART_OF) == "shop" or o["metadata"]["name"] == KNOWN_GOOD:
                    key = "KnownGood" if o["metadata"]["name"] == KNOWN_GOOD else kind
                    store.sizes[key] = store.sizes.get(key, 0) + len(store.items[kind][-1][3])
                    counts[key] = counts.get(key, 0) + 1
    for i in range(incidents):
        ns = f"scale-{i * max(1, namespaces // max(1, incidents)):04d}"
        store.add("Incident", {"apiVersion": "sre.stratus.dev/v1alpha1", "kind": "Incident",
                               "metadata": maker.meta({"metadata": {"name": f"product-unavailable-{i:05x}"}}, ns),
                               "spec": {"service": "product", "symptom": "unavailable", "severity": "critical",
                                        "source": "kubernetes", "dedupKey": "product/unavailable"},
                               "status": {"phase": "DryRun"}})
    store.counts = counts
    store.sort()
    return store


def start(store: Store, chunked: bool = True, ms_per_mb: float = 0.0) -> ThreadingHTTPServer:
    """The server on 127.0.0.1 (a free port), answering from `store` in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(store, chunked, ms_per_mb))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(namespaces: int, healthy: bool, incidents: int, chunked: bool, ms_per_mb: float) -> None:
    """The server process: builds the objects, prints its port and what it holds, serves until stdin closes."""
    store = build(chart_docs(), namespaces, healthy, incidents)
    server = start(store, chunked, ms_per_mb)
    print(json.dumps({"port": server.server_address[1], "bytes": store.sizes, "objects": store.counts}), flush=True)
    for line in sys.stdin:  # commands from the client: "writes" → the count so far
        if line.strip() == "writes":
            print(json.dumps({"writes": store.writes}), flush=True)
    server.shutdown()


# -- the client: the operator's own loop ----------------------------------------------------------------

class Serial:
    """A stand-in for the loop's thread pool that runs each task at once (for one cProfile)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> Serial:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        f: Future[Any] = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed back as the pool would
            f.set_exception(exc)
        return f

    def map(self, fn: Callable[..., Any], *its: Any) -> Iterator[Any]:
        return map(fn, *its)


def rss_mib() -> tuple[float, float]:
    fields = dict(ln.split(":", 1) for ln in Path("/proc/self/status").read_text().splitlines() if ":" in ln)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run(size: int, mode: str, cycles: int, profile: bool, incidents: int, chunked: bool,
        tuned: bool = True, ms_per_mb: float = 0.0) -> dict[str, Any]:
    import gc

    from kubernetes import client

    from sre_operator.adapters.kube import Kube
    from sre_operator.detection import loop
    from sre_operator.domain.metrics import MetricsReading
    from sre_operator.domain.telemetry import NoTelemetry
    from sre_operator.settings import Settings

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(size), "--mode", mode,
                               "--incidents", str(incidents), "--server-ms-per-mb", str(ms_per_mb),
                               *([] if chunked else ["--no-chunked"])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        assert server.stdin is not None
        hello = json.loads(server.stdout.readline())
        conf = client.Configuration()
        conf.host = f"http://127.0.0.1:{hello['port']}"
        kube = Kube(client.ApiClient(conf))
        namespaces = [f"scale-{i:04d}" for i in range(size)]
        healthy = {svc: {"rate": 5.0, "error_ratio": 0.0, "p95": 0.05, "up": 1.0}
                   for svc in ("gateway", "order", "product", "payment")}

        class Metrics:
            def read(self, names: Any, window: str) -> MetricsReading:
                cpu[0] = time.process_time()  # the cycle starts with its metrics reading
                if mode == "down":
                    return MetricsReading(window, {}, "Prometheus at http://127.0.0.1:9: refused")
                return MetricsReading(window, {ns: {k: dict(v) for k, v in healthy.items()} for ns in names})

        thresholds = gc.get_threshold()
        if tuned:
            operator_collector()
        stop = threading.Event()
        walls: list[float] = []
        cpus: list[float] = []
        cpu = [time.process_time()]

        class Recorder(NoTelemetry):
            def detector_cycle(self, seconds: float, namespaces: int) -> None:  # noqa: ARG002 - the port's
                walls.append(seconds)
                cpus.append(time.process_time() - cpu[0])
                if len(walls) >= cycles:
                    stop.set()

        settings = Settings(watch_namespaces=",".join(namespaces), detect_interval_seconds=0.001,
                            prometheus_url="http://127.0.0.1:9", breach_cycles=2)
        remember = operator_remember(kube)
        prof = cProfile.Profile() if profile else None
        pool = loop.ThreadPoolExecutor
        if prof is not None:
            loop.ThreadPoolExecutor = Serial  # type: ignore[assignment,misc]
            prof.enable()
        try:
            loop.detector_loop(stop, kube, Metrics(), settings, remember,  # type: ignore[arg-type]
                               telemetry=Recorder())
        finally:
            if prof is not None:
                prof.disable()
                loop.ThreadPoolExecutor = pool  # type: ignore[misc]
            gc.set_threshold(*thresholds)
        rss, peak = rss_mib()
        server.stdin.write("writes\n")
        server.stdin.flush()
        writes = json.loads(server.stdout.readline())["writes"]
        row: dict[str, Any] = {
            "namespaces": size, "mode": mode, "profiled": profile, "collector": "operator's" if tuned else "Python's",
            "serverMsPerMB": ms_per_mb,
            "objects": hello["objects"],
            "bytes": hello["bytes"], "cycles": [round(w, 3) for w in walls], "cpu": [round(c, 3) for c in cpus],
            # the first cycle opens the connection and warms the caches: the median of the others
            "cycleMedianSeconds": round(statistics.median(walls[1:] or walls), 3),
            "cpuMedianSeconds": round(statistics.median(cpus[1:] or cpus), 3),
            "rssMiB": round(rss, 1), "peakRssMiB": round(peak, 1), "writes": writes}
        if prof is not None:
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(30)
            row["profile"] = out.getvalue()
        return row
    finally:
        with contextlib.suppress(OSError):
            if server.stdin is not None:
                server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def operator_collector() -> None:
    """The collector as `sre-operator run` tunes it (nothing where the code measured predates that)."""
    from sre_operator import main
    tune = getattr(main, "tune_collector", None)
    if tune is not None:
        tune()


def operator_remember(kube: Any) -> Callable[[Any], None]:
    """What handlers/incidents.py gives the detector loop to record known-good (as it gave it
    before `signals.remembering`, where the code measured predates that)."""
    from sre_operator.detection import signals
    remembering = getattr(signals, "remembering", None)
    if remembering is not None:
        return remembering(kube)  # type: ignore[no-any-return]

    def remember(snap: Any) -> None:
        signals.Reader(kube, snap.namespace).remember_known_good(snapshot=snap)
    return remember


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/cycle_profile.py")
    p.add_argument("--sizes", default="100,1000")
    p.add_argument("--modes", default="down,healthy")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--incidents", type=int, default=0, help="Incidents in the cluster (DryRun)")
    p.add_argument("--profile", action="store_true", help="also one cProfile'd run per size and mode")
    p.add_argument("--python-gc", dest="tuned", action="store_false",
                   help="keep Python's collector thresholds (not the operator's `main.tune_collector`)")
    p.add_argument("--server-ms-per-mb", type=float, default=0.0,
                   help="the server waits this long per MB of a list page before answering (the API server's "
                        "own time; 0: answers at once)")
    p.add_argument("--no-chunked", dest="chunked", action="store_false",
                   help="answer with Content-Length rather than streamed chunks")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "cycle_profile.json")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="down", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.mode == "healthy", args.incidents, args.chunked, args.server_ms_per_mb)
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in args.modes.split(","):
            for profile in (False, True) if args.profile else (False,):
                row = run(size, mode, args.cycles, profile, args.incidents, args.chunked, args.tuned,
                          args.server_ms_per_mb)
                rows.append(row)
                text = row.pop("profile", None)
                print(f"cycle_profile: {json.dumps(row)}", flush=True)
                if text:
                    print(text, flush=True)
                    row["profileTop"] = text.splitlines()[:45]
    args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"cycle_profile: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
