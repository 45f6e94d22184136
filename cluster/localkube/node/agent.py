"""The node agent's main loop: register the Node, renew its Lease, watch the pods bound to it and
give each one a worker; serve the kubelet endpoints; provision PVCs of the `standard` class.

Run inside the node's network namespace (`python -m localkube.node --cluster NAME --data DIR …`)."""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import cgroups, images, linux, nodestatus, provisioner, security, server
from . import sandbox as sbx
from .kubeapi import ApiError, KubeApi
from .podworker import PodWorker

log = logging.getLogger("localkube.node")


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.cluster: str = args.cluster
        self.node_name: str = args.node_name
        self.node_ip: str = args.node_ip
        self.data = Path(args.data)
        self.pods_dir = self.data / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        net = ipaddress.ip_network(args.pod_cidr)
        self.pod_cidr = str(net)
        self.pod_prefix = net.prefixlen
        self.pod_gateway = str(next(net.hosts()))
        self.dns_ip: str = args.dns_ip
        self.domain: str = args.domain
        self.ipam = sbx.Ipam(self.data / "ipam.json", self.pod_cidr)
        pki = Path(args.pki)
        self.ca_path = pki / "ca.crt"
        self.ca_cert = self.ca_path.read_bytes()
        self.api = KubeApi(args.server, self.ca_path, pki / "node-agent.crt", pki / "node-agent.key")
        self.serving = (pki / "kubelet-serving.crt", pki / "kubelet-serving.key")
        self.image_map = images.load_map(Path(args.images) if args.images else images.MAP_FILE)
        self.masks: list[str] = [str(Path(m).resolve()) for m in args.mask or []]
        self.open_paths = _open_paths()
        self.program_dirs = _program_dirs()
        self.volume_resync: float = args.volume_resync
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._services: dict[str, tuple[float, list[dict]]] = {}
        self._levels: dict[str, tuple[float, str]] = {}

    # -- helpers for workers ---------------------------------------------------------------

    def event(self, pod: dict, etype: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"]},
                "reason": reason, "message": message[:1024], "type": etype,
                "source": {"component": "kubelet", "host": self.node_name},
                "reportingComponent": "kubelet", "reportingInstance": self.node_name,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self.api.create(f"/api/v1/namespaces/{meta['namespace']}/events", body)
        except Exception as exc:  # noqa: BLE001 - events are best effort, as on a kubelet
            log.debug("event %s for %s: %s", reason, meta["name"], exc)

    def services_for_env(self, namespace: str) -> list[dict]:
        cached = self._services.get(namespace)
        if cached and time.monotonic() - cached[0] < 2:
            return cached[1]
        items = self.api.get(f"/api/v1/namespaces/{namespace}/services").get("items", [])
        if namespace != "default":
            master = self.api.get_or_none("/api/v1/namespaces/default/services/kubernetes")
            if master:
                items = [s for s in items if s["metadata"]["name"] != "kubernetes"] + [master]
        self._services[namespace] = (time.monotonic(), items)
        return items

    def namespace_level(self, namespace: str) -> str:
        """The namespace's enforced Pod Security level (`baseline` without a label), cached briefly."""
        cached = self._levels.get(namespace)
        if cached and time.monotonic() - cached[0] < 2:
            return cached[1]
        lvl = security.level(self.api.get_or_none(f"/api/v1/namespaces/{namespace}"))
        self._levels[namespace] = (time.monotonic(), lvl)
        return lvl

    def lookup(self, namespace: str):
        def get(kind: str, name: str) -> dict | None:
            return self.api.get_or_none(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        return get

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        with self.lock:
            for w in self.workers.values():
                if w.ns == namespace and w.name_ == name and not w.finished:
                    return w
        return None

    # -- main loops ------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        last_status = 0.0
        while not self.stop.is_set():
            try:
                nodestatus.renew_lease(self.api, self.node_name)
                if time.monotonic() - last_status > 60:
                    nodestatus.post_status(self.api, self.node_name, self.node_ip)
                    last_status = time.monotonic()
            except Exception as exc:  # noqa: BLE001
                log.warning("heartbeat: %s", exc)
            self.stop.wait(10)

    def _sync_pod(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            w = self.workers.get(uid)
            if w is not None and not w.finished:
                w.update(pod)
                return
            if w is not None:
                return  # finished: deleted and cleaned up, waiting for the API to forget it
            w = PodWorker(self, pod)
            self.workers[uid] = w
        w.start()

    def _relist(self) -> str:
        resp = self.api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node_name}")
        seen = set()
        for pod in resp.get("items", []):
            seen.add(pod["metadata"]["uid"])
            self._sync_pod(pod)
        with self.lock:
            for uid, w in list(self.workers.items()):
                if uid not in seen:
                    if not w.finished:
                        w.mark_gone()
                    else:
                        del self.workers[uid]
        self._remove_orphans(seen)
        return resp["metadata"]["resourceVersion"]

    def _remove_orphans(self, known: set[str]) -> None:
        """Pods left on disk (and in cgroups or namespaces) by an earlier agent whose pods are gone."""
        with self.lock:
            active = set(self.workers)
        for d in self.pods_dir.iterdir():
            if d.name in known or d.name in active:
                continue
            log.info("removing orphaned pod %s", d.name)
            for ctr in (d / "containers").glob("*"):
                cgroups.kill_all(cgroups.group(self.cluster, d.name, ctr.name))
            cgroups.remove(cgroups.group(self.cluster, d.name))
            sbx.destroy(sbx.Sandbox(self.cluster, d.name, "", d / "sandbox"))
            self.ipam.release(d.name)
            linux.unmount_under(str(d))
            shutil.rmtree(d, ignore_errors=True)

    def _watch_pods(self) -> None:
        rv = ""
        last_list = 0.0
        while not self.stop.is_set():
            try:
                if not rv or time.monotonic() - last_list > 30:
                    rv = self._relist()
                    last_list = time.monotonic()
                for ev in self.api.watch("/api/v1/pods", rv, timeout_seconds=25,
                                         fieldSelector=f"spec.nodeName={self.node_name}"):
                    obj = ev["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if ev["type"] == "BOOKMARK":
                        continue
                    if ev["type"] == "DELETED":
                        with self.lock:
                            w = self.workers.get(obj["metadata"]["uid"])
                        if w is not None and not w.finished:
                            w.mark_gone()
                    else:
                        self._sync_pod(obj)
                    if time.monotonic() - last_list > 30:
                        break
            except ApiError as exc:
                if exc.status == 410:
                    rv = ""
                    continue
                log.warning("pod watch: %s", exc)
                self.stop.wait(1)
            except Exception as exc:  # noqa: BLE001 - the API server may be restarting
                log.warning("pod watch: %s", exc)
                rv = ""
                self.stop.wait(1)

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                nodestatus.register(self.api, self.node_name, self.node_ip, self.pod_cidr)
                nodestatus.renew_lease(self.api, self.node_name)
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("registering the node: %s", exc)
                time.sleep(1)
        log.info("node %s registered (%s)", self.node_name, self.node_ip)
        srv = server.serve(self, self.node_ip, nodestatus.KUBELET_PORT, self.serving)
        threading.Thread(target=srv.serve_forever, name="kubelet-server", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        threading.Thread(target=provisioner.run, args=(self,), name="provisioner", daemon=True).start()
        self._watch_pods()


def _open_paths() -> list[str]:
    """Paths a container user must be able to reach: this Python and the project's packages."""
    paths = {sys.prefix, os.path.realpath(sys.executable)}
    for mod in ("shop", "localkube", "sre_operator", "sre_dashboard"):
        spec = importlib.util.find_spec(mod)
        if spec and spec.submodule_search_locations:
            paths.update(spec.submodule_search_locations)
    return sorted(paths)


PACKAGES = ("shop", "localkube", "sre_operator", "sre_dashboard")


def _program_dirs() -> list[str]:
    """Directories holding what mapped images run: the virtualenv, the base Python, the packages
    (where this agent finds them, and where the interpreter finds them without PYTHONPATH, as a
    container's does)."""
    dirs = {sys.prefix, os.path.realpath(sys.base_prefix)}
    for mod in PACKAGES:
        spec = importlib.util.find_spec(mod)
        if spec and spec.submodule_search_locations:
            dirs.update(os.path.dirname(p) for p in spec.submodule_search_locations)
    probe = ("import importlib.util as u, json\n"
             f"print(json.dumps([p for m in {PACKAGES!r} if (s := u.find_spec(m)) "
             "for p in (s.submodule_search_locations or [])]))")
    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False,
                         cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    if out.returncode == 0:
        dirs.update(os.path.dirname(p) for p in json.loads(out.stdout or "[]"))
    return sorted(dirs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="localkube.node")
    p.add_argument("--cluster", required=True)
    p.add_argument("--data", required=True, help="the agent's state dir")
    p.add_argument("--pki", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--node-name", required=True)
    p.add_argument("--node-ip", required=True)
    p.add_argument("--pod-cidr", required=True)
    p.add_argument("--dns-ip", required=True)
    p.add_argument("--domain", default="cluster.local")
    p.add_argument("--images", help="image map (default: the packaged images.yaml)")
    p.add_argument("--mask", action="append", help="a host path containers must not see (repeatable)")
    p.add_argument("--volume-resync", type=float, default=5.0)
    args = p.parse_args(argv)
    os.umask(0o077)  # the node's state (tokens, logs, specs with env values) is root's alone from the start
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    Agent(args).run()
    return 0
