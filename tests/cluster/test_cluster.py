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
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True).stdout
    ours = [ln for ln in out.splitlines() if f":{cluster.api_port} " in ln]
    assert ours and all("127.0.0.1:" in ln for ln in ours)
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
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
