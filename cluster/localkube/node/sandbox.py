"""A pod's sandbox: its network namespace wired into the node's bridge by a veth pair, an address
from the node's pod range (kept in a small file so a restarted agent keeps it), and the files every
container of the pod shares: resolv.conf, hosts and hostname."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import netns

DNS_SEARCH = "svc.cluster.local"


class SandboxError(RuntimeError):
    pass


def _run(*argv: str) -> None:
    out = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SandboxError(f"{' '.join(argv)}: {out.stderr.strip()}")


class Ipam:
    """Addresses of the node's pod range, handed out by pod uid; .1 is the bridge (gateway).

    Round robin, as the host-local CNI plugin does: the next address after the last one handed out,
    never the lowest free one. A pod replaced by a Recreate rollout would otherwise get the very
    address its predecessor just gave back, and every neighbour (the node's probes, Prometheus,
    the other pods) keeps sending to the old pod's MAC until its ARP entry goes stale: 15 to 45 s
    in which the new pod is running but unreachable."""
    LAST = "_last"  # the file's key for the last address handed out (pod uids never start with "_")

    def __init__(self, path: Path, cidr: str) -> None:
        self.path = path
        self.net = ipaddress.ip_network(cidr)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def _save(self, taken: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(taken))
        tmp.replace(self.path)

    def allocate(self, uid: str) -> str:
        with self._lock:
            taken = self._load()
            if uid in taken:
                return taken[uid]
            last = taken.get(self.LAST)
            used = {ip for k, ip in taken.items() if k != self.LAST}
            hosts = [str(h) for h in list(self.net.hosts())[1:]]
            start = hosts.index(last) + 1 if last in hosts else 0
            for host in hosts[start:] + hosts[:start]:
                if host not in used:
                    taken[uid] = taken[self.LAST] = host
                    self._save(taken)
                    return host
            raise SandboxError(f"no free address left in {self.net}")

    def release(self, uid: str) -> None:
        with self._lock:
            taken = self._load()
            if uid != self.LAST and taken.pop(uid, None) is not None:
                self._save(taken)


@dataclass
class Sandbox:
    cluster: str
    uid: str
    ip: str
    dir: Path

    @property
    def netns(self) -> str:
        return f"lk-{self.cluster}-p-{self.uid[:8]}"

    @property
    def netns_path(self) -> str:
        return str(netns.NETNS_DIR / self.netns)

    @property
    def host_veth(self) -> str:
        return f"lkv{self.uid[:8]}"

    def files(self) -> dict[str, Path]:
        return {"/etc/resolv.conf": self.dir / "resolv.conf", "/etc/hosts": self.dir / "hosts",
                "/etc/hostname": self.dir / "hostname"}


def create(sb: Sandbox, gateway: str, prefix: int, namespace: str, hostname: str, dns_ip: str,
           domain: str, pod_dns: dict | None = None) -> None:
    """Idempotent: an existing namespace with its veth is kept (adoption after an agent restart)."""
    sb.dir.mkdir(parents=True, exist_ok=True)
    if not netns.exists(sb.netns):
        _run("ip", "netns", "add", sb.netns)
    ns = sb.netns
    if subprocess.run(["ip", "link", "show", sb.host_veth], capture_output=True, check=False).returncode != 0:
        _run("ip", "link", "add", sb.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", sb.host_veth, "master", netns.BRIDGE, "up")
        # A pod reaching itself through its Service comes back in on the same bridge port.
        _run("ip", "link", "set", "dev", sb.host_veth, "type", "bridge_slave", "hairpin", "on")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "addr", "add", f"{sb.ip}/{prefix}", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "route", "add", "default", "via", gateway)
        # Whatever the node still knows of this address (a pod long gone had it) is forgotten now.
        subprocess.run(["ip", "neigh", "flush", "to", sb.ip], capture_output=True, check=False)
    pod_dns = pod_dns or {}
    search = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *list(pod_dns.get("searches") or [])]
    servers = list(pod_dns.get("nameservers") or []) or [dns_ip]
    ndots = next((o.get("value") for o in pod_dns.get("options") or [] if o.get("name") == "ndots"), "5")
    (sb.dir / "resolv.conf").write_text(
        "".join(f"nameserver {s}\n" for s in servers) + f"search {' '.join(search)}\noptions ndots:{ndots}\n")
    (sb.dir / "hosts").write_text(
        "# Kubernetes-managed hosts file (localkube).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
        f"{sb.ip}\t{hostname}\n")
    (sb.dir / "hostname").write_text(hostname + "\n")
    for f in sb.files().values():
        f.chmod(0o644)


def destroy(sb: Sandbox) -> None:
    subprocess.run(["ip", "link", "del", sb.host_veth], capture_output=True, check=False)
    netns.delete(sb.netns)
