"""The cluster's processes, each started inside the node namespace with its own log file: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, then kube-proxy (nftables) and CoreDNS."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .binaries import find_binary
from .pki import PKI

NODE_IP = "172.30.0.2"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1/24"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
DOMAIN = "cluster.local"
API_PORT = 6443
NODE_NAME = "localkube-node"
IN_NODE_API = f"https://{NODE_IP}:{API_PORT}"


@dataclass
class Layout:
    """Where a cluster keeps its files."""
    data: Path

    @property
    def pki(self) -> PKI:
        return PKI(self.data / "pki")

    @property
    def etcd_pki(self) -> PKI:
        """etcd's own CA: a certificate of the cluster's CA (kube-proxy's, a node's) opens no door to etcd."""
        return PKI(self.data / "pki" / "etcd")

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    def kubeconfig(self, who: str) -> Path:
        return self.data / "kubeconfig" / f"{who}.conf"


def prepare_pki(layout: Layout, admin_server: str) -> Path:
    """Certificates and kubeconfigs for every component; returns the admin kubeconfig's path."""
    etcd = layout.etcd_pki
    etcd.ensure_ca()
    etcd.issue("server", "localkube-etcd", server=True, client=True, dns=("localhost",), ips=("127.0.0.1",))
    etcd.issue("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    pki = layout.pki
    pki.ensure_ca()
    pki.service_account_keys()
    pki.issue("apiserver", "kube-apiserver", server=True,
              dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   f"kubernetes.default.svc.{DOMAIN}"),
              ips=("127.0.0.1", NODE_IP, KUBERNETES_SERVICE_IP))
    pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", orgs=("system:masters",), client=True)
    users = {"controller-manager": ("system:kube-controller-manager", ()),
             "scheduler": ("system:kube-scheduler", ()),
             "kube-proxy": ("system:kube-proxy", ()),
             "coredns": ("localkube:coredns", ()),
             "kwok": ("localkube:kwok", ("system:masters",)),
             "admin-in-node": ("localkube-admin", ("system:masters",))}
    for who, (cn, orgs) in users.items():
        cert, key = pki.issue(who, cn, orgs=orgs, client=True)
        pki.kubeconfig(layout.kubeconfig(who), IN_NODE_API, cn, cert, key)
    # The node agent: a cluster admin (it also provisions volumes), unlike a real kubelet's
    # system:node identity; its serving certificate is what `kubectl logs` reaches through the API server.
    pki.issue("node-agent", "localkube:node-agent", orgs=("system:masters",), client=True)
    pki.issue("kubelet-serving", NODE_NAME, server=True, dns=(NODE_NAME,), ips=(NODE_IP,))
    cert, key = pki.issue("admin", "localkube-admin", orgs=("system:masters",), client=True)
    return pki.kubeconfig(layout.kubeconfig("admin"), admin_server, "localkube-admin", cert, key)


# Pod Security admission for every namespace without a label of its own: `baseline` forbids host
# namespaces, hostPath, privileged containers and added capabilities (as the node agent does too).
ADMISSION_CONFIG = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: baseline, enforce-version: latest, warn: baseline, warn-version: latest,
               audit: restricted, audit-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}
"""


def write_admission_config(layout: Layout) -> Path:
    path = layout.data / "admission.yaml"
    path.write_text(ADMISSION_CONFIG)
    return path


def component_argv(name: str, layout: Layout) -> list[str]:
    d, pki = layout.data, layout.pki.dir
    etcd = layout.etcd_pki.dir
    if name == "etcd":
        # Clients and the (single) peer only with a certificate of etcd's own CA.
        tls = [f"--cert-file={etcd / 'server.crt'}", f"--key-file={etcd / 'server.key'}", "--client-cert-auth",
               f"--trusted-ca-file={etcd / 'ca.crt'}", f"--peer-cert-file={etcd / 'server.crt'}",
               f"--peer-key-file={etcd / 'server.key'}", "--peer-client-cert-auth",
               f"--peer-trusted-ca-file={etcd / 'ca.crt'}"]
        return [str(find_binary("etcd")), f"--data-dir={d / 'etcd'}", "--name=localkube", *tls,
                "--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379",
                "--listen-peer-urls=https://127.0.0.1:2380", "--initial-advertise-peer-urls=https://127.0.0.1:2380",
                "--initial-cluster=localkube=https://127.0.0.1:2380", "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296", "--log-level=warn"]
    if name == "kube-apiserver":
        return [str(find_binary("kube-apiserver")), "--etcd-servers=https://127.0.0.1:2379",
                f"--etcd-cafile={etcd / 'ca.crt'}", f"--etcd-certfile={etcd / 'apiserver-etcd-client.crt'}",
                f"--etcd-keyfile={etcd / 'apiserver-etcd-client.key'}",
                f"--advertise-address={NODE_IP}", "--bind-address=0.0.0.0", f"--secure-port={API_PORT}",
                f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-issuer=https://kubernetes.default.svc.{DOMAIN}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction,PodSecurity", "--allow-privileged=true",
                f"--admission-control-config-file={d / 'admission.yaml'}",
                "--profiling=false", "--v=1"]
    if name == "kube-controller-manager":
        conf = layout.kubeconfig("controller-manager")
        return [str(find_binary("kube-controller-manager")), f"--kubeconfig={conf}",
                f"--authentication-kubeconfig={conf}", f"--authorization-kubeconfig={conf}",
                "--bind-address=127.0.0.1", "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--cluster-cidr={POD_CIDR}", "--allocate-node-cidrs=true", "--node-cidr-mask-size=24",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "--v=1"]
    if name == "kube-scheduler":
        conf = layout.kubeconfig("scheduler")
        return [str(find_binary("kube-scheduler")), f"--kubeconfig={conf}", f"--authentication-kubeconfig={conf}",
                f"--authorization-kubeconfig={conf}", "--bind-address=127.0.0.1", "--leader-elect=false",
                "--profiling=false", "--v=1"]
    if name == "kube-proxy":
        return [str(find_binary("kube-proxy")), f"--kubeconfig={layout.kubeconfig('kube-proxy')}",
                "--proxy-mode=nftables", f"--hostname-override={NODE_NAME}", f"--cluster-cidr={POD_CIDR}",
                f"--bind-address={NODE_IP}", f"--nodeport-addresses={NODE_IP}/32",
                "--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256",
                "--conntrack-max-per-core=0", "--v=1"]
    if name == "node-agent":
        return [
            sys.executable,
            "-m",
            "localkube.node",
            f"--data={d / 'node'}",
            f"--pki={pki}",
            f"--server={IN_NODE_API}",
            f"--node-name={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--pod-cidr={NODE_POD_CIDR}",
            f"--dns-ip={DNS_SERVICE_IP}",
            f"--domain={DOMAIN}",
        ]
    if name == "coredns":
        corefile = layout.data / "Corefile"
        return [str(find_binary("coredns")), "-conf", str(corefile)]
    raise ValueError(f"unknown component {name}")


CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Started once the control plane is ready and the addons are applied.
NODE_COMPONENTS = ("node-agent", "kube-proxy", "coredns")


def start(name: str, argv: list[str], node_ns: str, logs: Path) -> int:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(netns.nsenter(node_ns) + argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(") ", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _stop(targets: list[int], kill: Callable[[int, int], None], gone: Callable[[int], bool],
          grace: float) -> None:
    """SIGTERM every target, then SIGKILL those still there after `grace` seconds; reaps our own
    children (a target that is a pid, or a group's leader) meanwhile."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for target in targets:
            with contextlib.suppress(ProcessLookupError):
                kill(target, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for target in targets:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(target, os.WNOHANG)
            if all(gone(t) for t in targets):
                return
            time.sleep(0.05)


def stop_groups(pgids: list[int], grace: float = 5.0) -> None:
    """Stop whole process groups (a process started with start_new_session and every child it
    started, such as a build's compilers): SIGTERM, then SIGKILL after `grace` seconds."""
    _stop(pgids, os.killpg, lambda g: not group_members(g), grace)


def stop_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps our own children."""
    _stop(pids, os.kill, lambda p: not alive(p), grace)
