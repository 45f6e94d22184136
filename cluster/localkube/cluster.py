"""A local cluster: the node namespace, the control plane inside it, published ports, and the
Python API the CLI and the tests use. State lives in DATA/state.json so `down` works from another
process and after a crash."""
from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import addons, kwok, netns
from . import controlplane as cp
from .binaries import cache_root, find_binary
from .node import cgroups, linux


class ClusterError(RuntimeError):
    pass


@dataclass
class PortMapping:
    host_port: int  # 0 = any free port
    node_port: int


@dataclass
class Cluster:
    name: str
    data: Path
    api_host_port: int = 0
    mappings: list[PortMapping] = field(default_factory=list)
    kubeconfig_out: Path | None = None

    @property
    def layout(self) -> cp.Layout:
        return cp.Layout(self.data)

    @property
    def node_netns(self) -> str:
        return netns.node_netns(self.name)

    @property
    def state_path(self) -> Path:
        return self.data / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.kubeconfig_out or self.layout.kubeconfig("admin")

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"pids": {}}

    def _save(self, state: dict) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state, indent=1))

    @property
    def ports(self) -> dict[str, int]:
        """Published ports: target (`IP:PORT` inside the node) → host port on 127.0.0.1."""
        return self.state().get("ports", {})

    @property
    def api_port(self) -> int:
        return self.ports[f"{cp.NODE_IP}:{cp.API_PORT}"]

    def host_port(self, node_port: int) -> int:
        return self.ports[f"{cp.NODE_IP}:{node_port}"]

    # -- life cycle -------------------------------------------------------------------------

    def up(self, timeout: float = 120.0) -> Cluster:
        """Start everything; files and directories the cluster makes (keys, state, logs, etcd) are
        its own from the start (umask 077 for it and the processes it starts)."""
        old = os.umask(0o077)
        try:
            return self._up(timeout)
        finally:
            os.umask(old)

    def _up(self, timeout: float) -> Cluster:
        netns.require_root()
        started = time.monotonic()
        self.down(quiet=True)
        self.data.mkdir(parents=True, exist_ok=True)
        state: dict = {"name": self.name, "netns": self.node_netns, "pids": {}}
        netns.create_node_netns(self.node_netns, cp.NODE_IP, cp.POD_GATEWAY, cp.SERVICE_CIDR)
        state["netns_created"] = True
        self._save(state)

        # Published ports first: the admin kubeconfig needs the API server's host port.
        targets = [f"{self.api_host_port}={cp.NODE_IP}:{cp.API_PORT}"]
        targets += [f"{m.host_port}={cp.NODE_IP}:{m.node_port}" for m in self.mappings]
        ports_file = self.data / "ports.json"
        ports_file.unlink(missing_ok=True)
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        with open(self.layout.logs / "portmap.log", "ab") as log:
            pm = subprocess.Popen([sys.executable, "-m", "localkube.portmap", "--netns", self.node_netns,
                                   "--state", str(ports_file), *targets], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        state["pids"]["portmap"] = pm.pid
        self._save(state)
        self._wait(ports_file.exists, 10, "published ports", pm.pid)
        state["ports"] = json.loads(ports_file.read_text())
        self._save(state)

        admin = cp.prepare_pki(self.layout, f"https://127.0.0.1:{state['ports'][f'{cp.NODE_IP}:{cp.API_PORT}']}")
        cp.write_admission_config(self.layout)
        if self.kubeconfig_out:
            self.kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(admin, self.kubeconfig_out)
            self.kubeconfig_out.chmod(0o600)

        for name in cp.CONTROL_PLANE:
            state["pids"][name] = cp.start(name, cp.component_argv(name, self.layout), self.node_netns,
                                           self.layout.logs)
            self._save(state)
            if name == "kube-apiserver":
                self._wait(self._api_ready, timeout, "the API server's /readyz", state["pids"][name])
        self._wait(self._default_service_account, 60, "the default ServiceAccount (controller-manager)",
                   state["pids"]["kube-controller-manager"])
        (self.data / "Corefile").write_text(addons.corefile(self.layout.kubeconfig("coredns")))
        self.apply(addons.MANIFEST)
        for name in cp.NODE_COMPONENTS:
            state["pids"][name] = cp.start(name, self._argv(name), self.node_netns, self.layout.logs)
            self._save(state)
            if name == "node-agent":
                self._wait(self._node_ready, 30, "the node agent to register the Node", state["pids"][name])
        self._wait(self._dns_ready, 30, "CoreDNS to answer", state["pids"]["coredns"])
        self._wait(self._dns_through_service, 60, "DNS through the kube-dns Service (kube-proxy)",
                   state["pids"]["kube-proxy"])
        state["up_seconds"] = round(time.monotonic() - started, 2)
        self._save(state)
        return self

    def down(self, quiet: bool = False, purge: bool = False) -> None:
        """Stop every process (the adopted process groups too) and remove every namespace; safe to call
        twice or after a crash.
        `purge` also deletes the data dir (etcd, pki, state) but keeps the component logs."""
        state = self.state()
        cp.stop_groups([int(g) for g in state.get("groups", {}).values()])
        pids = [int(p) for p in state.get("pids", {}).values()]
        if netns.exists(self.node_netns):
            pids += netns.pids(self.node_netns)
        cp.stop_pids(sorted(set(pids)))
        # Containers run in their own sessions under shims: their cgroups find them all.
        cgroups.remove(cgroups.cluster_group(self.name))
        linux.unmount_under(str(self.data))  # the node's Secret volumes (tmpfs), if its agent died first
        for name in netns.list_names(f"lk-{self.name}-"):
            leftover = netns.pids(name)
            if leftover:
                cp.stop_pids(leftover, grace=1)
            netns.delete(name)
        if purge and self.data.exists():
            for child in self.data.iterdir():
                if child.name != "logs":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        elif self.state_path.exists():
            state["pids"], state["groups"] = {}, {}
            state["stopped"] = True
            self._save(state)
        if not quiet:
            print(f"localkube: cluster {self.name} is down")

    def adopt(self, name: str, pgid: int) -> None:
        """Tie a process group started for this cluster (outside its node, e.g. the demo's background
        model build, started with start_new_session) to it: `down` stops the whole group."""
        state = self.state()
        state.setdefault("groups", {})[name] = pgid
        self._save(state)

    def adopted(self, name: str) -> int | None:
        """The process group adopted as `name`, if any of its processes still runs."""
        pgid = self.state().get("groups", {}).get(name)
        return int(pgid) if pgid and cp.group_members(int(pgid)) else None

    def _argv(self, name: str) -> list[str]:
        argv = cp.component_argv(name, self.layout)
        if name == "node-agent":
            argv += [f"--cluster={self.name}", *(f"--mask={m}" for m in self._hidden_from_pods())]
        return argv

    def restart(self, name: str, kill: bool = True) -> int:
        """Stop one component (SIGKILL, as a crash) and start it again; returns its new pid."""
        state = self.state()
        old = state["pids"].get(name)
        if kill and old:
            cp.stop_pids([int(old)], grace=0.1)
        state["pids"][name] = cp.start(name, self._argv(name), self.node_netns, self.layout.logs)
        self._save(state)
        return state["pids"][name]

    def start_kwok(self) -> int:
        """Start kwok (fake nodes for scale tests) if it is not running; returns its pid."""
        state = self.state()
        pid = state["pids"].get("kwok")
        if pid and cp.alive(int(pid)):
            return int(pid)
        stages = self.data / "kwok-stages.yaml"
        stages.write_text(kwok.STAGES)
        argv = kwok.argv(str(find_binary("kwok")), str(self.layout.kubeconfig("kwok")), str(stages))
        state["pids"]["kwok"] = cp.start("kwok", argv, self.node_netns, self.layout.logs)
        self._save(state)
        return state["pids"]["kwok"]

    def _hidden_from_pods(self) -> list[Path]:
        """What pods must not see of the machine: the cluster's keys and state, the admin
        kubeconfig's dir when it is a dedicated one, the binaries cache (binaries are bound one by one)."""
        hidden = [self.data, cache_root()]
        if self.kubeconfig_out and self.kubeconfig_out.parent.name == ".cluster":
            hidden.append(self.kubeconfig_out.parent)
        return hidden

    def _node_ready(self) -> bool:
        with self._client() as c:
            node = c.get(f"/api/v1/nodes/{cp.NODE_NAME}")
            if node.status_code != 200:
                return False
            conds = node.json().get("status", {}).get("conditions") or []
            return any(x["type"] == "Ready" and x["status"] == "True" for x in conds)

    def _wait(self, check, timeout: float, what: str, pid: int | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if pid is not None and not cp.alive(pid):
                raise ClusterError(f"waiting for {what}: process {pid} exited; see {self.layout.logs}")
            time.sleep(0.2)
        raise ClusterError(f"timed out after {timeout}s waiting for {what}; see {self.layout.logs}")

    def _client(self) -> httpx.Client:
        pki = self.layout.pki
        cert, key = pki.path("admin")
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
        ctx.load_cert_chain(str(cert), str(key))
        return httpx.Client(base_url=f"https://127.0.0.1:{self.api_port}", verify=ctx, timeout=5)

    def _api_ready(self) -> bool:
        try:
            with self._client() as c:
                return c.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _dns_ready(self) -> bool:
        out = subprocess.run([*netns.nsenter(self.node_netns), "curl", "-sf", "-m", "1", "http://127.0.0.1:8182/ready"],
                             capture_output=True, check=False)
        return out.returncode == 0

    def _dns_through_service(self) -> bool:
        out = self.exec_in_node("dig", "+short", "+time=1", "+tries=1", f"@{cp.DNS_SERVICE_IP}",
                                f"kubernetes.default.svc.{cp.DOMAIN}")
        return out.stdout.strip() == cp.KUBERNETES_SERVICE_IP

    def exec_in_node(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command in the node's network namespace."""
        return subprocess.run(netns.nsenter(self.node_netns) + list(argv), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def _default_service_account(self) -> bool:
        with self._client() as c:
            return c.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

    # -- tools ------------------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,  # noqa: A002 - subprocess.run's name
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(find_binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        out = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, check=False)
        if check and out.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.data / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.data / "helm" / "config"),
            "HELM_DATA_HOME": str(self.data / "helm" / "data"),
        }
        out = subprocess.run([str(find_binary("helm")), *args], capture_output=True, text=True, env=env,
                             timeout=timeout, check=False)
        if check and out.returncode != 0:
            raise ClusterError(f"helm {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def apply(self, manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", *extra, input=manifest)
