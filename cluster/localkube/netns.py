"""Network namespaces of a cluster: the node's (like a kind node container) and, later, each pod's.

Private addresses exist only inside namespaces made here; the root namespace is never given an
address, a route or forwarding. Names carry the cluster's name, so parallel clusters never collide.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

NETNS_DIR = Path("/run/netns")
BRIDGE = "lkbr0"


class NotRoot(PermissionError):
    pass


def require_root(what: str = "the local cluster") -> None:
    if os.geteuid() != 0:
        raise NotRoot(f"{what} needs root (network namespaces, cgroups, nftables): run `sudo make cluster-up`, "
                      "or use `make kind-up` on a machine with Docker")


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def node_netns(cluster: str) -> str:
    return f"lk-{cluster}-node"


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def create_node_netns(name: str, node_ip: str, pod_gateway_cidr: str, service_cidr: str) -> None:
    """The node namespace: loopback and the pod bridge, which holds both the pod range's gateway and
    the node IP (as a /32), with forwarding on (inside this namespace only)."""
    if exists(name):
        delete(name)
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)
    ip("link", "add", BRIDGE, "type", "bridge", netns=name)
    ip("addr", "add", pod_gateway_cidr, "dev", BRIDGE, netns=name)
    ip("addr", "add", f"{node_ip}/32", "dev", BRIDGE, netns=name)
    ip("link", "set", BRIDGE, "up", netns=name)
    # Service addresses are only ever DNAT-ed (kube-proxy), but the route lookup before needs a route.
    ip("route", "add", service_cidr, "dev", BRIDGE, "src", node_ip, netns=name)
    subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    # Replies between pods on the bridge must pass conntrack to be un-NATed (Service → pod → pod).
    subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"],
                   check=False)


def pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def list_names(prefix: str) -> list[str]:
    if not NETNS_DIR.exists():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def nsenter(name: str) -> list[str]:
    """argv prefix to run a program in a namespace's network only (not `ip netns exec`, which also
    remounts /sys and so hides the cgroup hierarchy from the program)."""
    return ["nsenter", f"--net={NETNS_DIR / name}", "--"]
