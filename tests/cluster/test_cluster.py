"""The local cluster itself: a real, versioned control plane inside its own node namespace, with the
`kubernetes` Service pointing at the node IP, and a `down` that leaves nothing behind, even after
its processes were killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from localkube import controlplane as cp
from localkube import netns, versions
from localkube.cluster import Cluster
from localkube.testing import leftovers


def test_control_plane_answers_with_the_pinned_version(cluster: Cluster) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == versions.KUBERNETES
    assert cluster.kubeconfig.read_text().count(f"https://127.0.0.1:{cluster.api_port}") == 1


def test_kubernetes_service_points_at_the_node_ip(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
                          "-o", "jsonpath={.items[0].endpoints[0].addresses[0]}").stdout
    assert out == cp.NODE_IP
    assert cluster.kubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout == \
        cp.KUBERNETES_SERVICE_IP


def test_the_root_namespace_gets_only_loopback_listeners(cluster: Cluster) -> None:
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=False).stdout
    ours = [ln for ln in out.splitlines() if f":{cluster.api_port} " in ln]
    assert ours and all("127.0.0.1:" in ln for ln in ours)
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    assert cp.NODE_IP not in addrs and "10.244." not in addrs


def test_down_after_a_crash_leaves_nothing_and_twice_is_harmless(tmp_path: Path) -> None:
    c = Cluster("crash" + os.urandom(2).hex(), tmp_path / "c").up()
    for pid in c.state()["pids"].values():
        os.kill(int(pid), signal.SIGKILL)
    assert netns.exists(c.node_netns)
    c.down(quiet=True, purge=True)
    c.down(quiet=True, purge=True)
    assert leftovers(c) == []
    assert not netns.exists(c.node_netns)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["logs"]
    assert (tmp_path / "c" / "logs" / "kube-apiserver.log").stat().st_size > 0


def _pod_like_namespace(cluster: Cluster, suffix: str, ip_addr: str) -> str:
    """A namespace plugged into the node's bridge the way the node agent plugs pods in."""
    name = f"lk-{cluster.name}-{suffix}"
    host_if, pod_if = f"lkv{suffix}"[:15], "eth0"
    subprocess.run(["ip", "netns", "add", name], check=True)
    netns.ip("link", "add", host_if, "type", "veth", "peer", "name", pod_if, "netns", name, netns=cluster.node_netns)
    netns.ip("link", "set", host_if, "master", netns.BRIDGE, "up", netns=cluster.node_netns)
    subprocess.run(["ip", "netns", "exec", cluster.node_netns, "bridge", "link", "set", "dev", host_if,
                    "hairpin", "on"], check=True)
    netns.ip("link", "set", "lo", "up", netns=name)
    netns.ip("addr", "add", f"{ip_addr}/24", "dev", pod_if, netns=name)
    netns.ip("link", "set", pod_if, "up", netns=name)
    netns.ip("route", "add", "default", "via", cp.POD_GATEWAY.split("/")[0], netns=name)
    return name


def test_cluster_dns_and_a_cluster_ip_work_from_a_pod_namespace(cluster: Cluster, namespace: str,
                                                                  tmp_path: Path) -> None:
    pod_ns = _pod_like_namespace(cluster, "p1", "10.244.0.200")
    client_ns = _pod_like_namespace(cluster, "p2", "10.244.0.201")
    (tmp_path / "hello.txt").write_text("hello from the pod\n")
    server = subprocess.Popen(
        [*netns.nsenter(pod_ns), "python3", "-m", "http.server", "8080", "--bind", "10.244.0.200"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cluster.apply(f"""
apiVersion: v1
kind: Service
metadata: {{name: hello, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: hello-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: hello}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints: [{{addresses: ["10.244.0.200"], conditions: {{ready: true}}}}]
""")
        cluster_ip = cluster.kubectl("get", "svc", "hello", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout

        def in_pod(*argv: str) -> str:
            return subprocess.run(
                netns.nsenter(client_ns) + list(argv), capture_output=True, text=True, check=False
            ).stdout

        import time
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            resolved = in_pod("dig", "+short", "+time=1", "+tries=1", f"@{cp.DNS_SERVICE_IP}",
                              f"hello.{namespace}.svc.cluster.local").strip()
            body = in_pod("curl", "-s", "-m", "2", f"http://{cluster_ip}/hello.txt")
            if resolved == cluster_ip and body == "hello from the pod\n":
                break
            time.sleep(0.5)
        assert resolved == cluster_ip
        # From another pod through the Service: DNAT by kube-proxy, replies un-NATed through conntrack.
        assert body == "hello from the pod\n"
        assert in_pod("dig", "+short", "+time=1", "+tries=1", f"@{cp.DNS_SERVICE_IP}", "example.com").strip() == ""
    finally:
        server.kill()
        server.wait()
        netns.delete(pod_ns)
        netns.delete(client_ns)
