"""pytest plugin: a real local cluster for a whole test session, a fresh namespace per test, the
project's CRDs applied, and a final check that the session left nothing behind.

Registered from tests/conftest.py. The cluster is started lazily by the first test that asks for it.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import netns
from .cluster import Cluster, PortMapping
from .node import cgroups, linux

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


def leftovers(cluster: Cluster) -> list[str]:
    """Everything of this cluster still on the machine: namespaces, cgroups, processes, nftables."""
    found = [f"netns {n}" for n in netns.list_names(f"lk-{cluster.name}-")]
    found += [f"cgroup {g}" for g in cgroups.leftovers(cluster.name)]
    found += [f"mount {m}" for m in linux.mounts_under(str(cluster.data))]
    # kube-proxy's nftables tables live in the node namespace; none may ever reach the root one.
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    found += [f"root-namespace nftables {t}" for t in tables.splitlines() if "kube-proxy" in t]
    out = subprocess.run(["pgrep", "-af", str(cluster.data)], capture_output=True, text=True, check=False)
    found += [f"process {ln}" for ln in out.stdout.splitlines() if "pgrep" not in ln]
    return found


def container_pid(cluster: Cluster, namespace: str, pod: str, container: str) -> int:
    """The host pid of a container's main process, from the node agent's records."""
    uid = cluster.kubectl("get", "pod", pod, "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    cdir = cluster.data / "node" / "pods" / uid / "containers" / container
    attempts = sorted(int(p.name.split(".")[0]) for p in cdir.glob("*.state.json"))
    return int(json.loads((cdir / f"{attempts[-1]}.state.json").read_text())["pid"])


def wait_for(check, timeout: float = 60, what: str = "", interval: float = 0.5):
    """Poll `check` until it returns something truthy; its last value in the failure message."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last {last!r}")


def helm_install(cluster: Cluster, release: str, chart: str, namespace: str, *values: str,
                 timeout: str = "180s") -> None:
    """`helm install --wait` of one of the project's charts (`charts/<chart>`)."""
    sets = [a for v in values for a in ("--set", v)]
    cluster.helm("install", release, str(ROOT / "charts" / chart), "-n", namespace, "--wait",
                 f"--timeout={timeout}", *sets)


@contextlib.contextmanager
def shop_namespace(cluster: Cluster, observability: bool = False, shop_values: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh namespace with the shop chart installed (with `shop_values`, and Prometheus when
    asked), removed after."""
    ns = f"shop-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    try:
        helm_install(cluster, "shop", "shop", ns, *shop_values)
        if observability:
            helm_install(cluster, "observability", "observability", ns, "cadvisor.enabled=false",
                         "jaeger.enabled=false")
        yield ns
    finally:
        for release in ("observability", "shop"):
            cluster.helm("uninstall", release, "-n", ns, check=False)
        # Custom objects a test left with a finalizer whose controller is gone must not hold the namespace.
        for kind in ("faultscenarios.sre.stratus.dev", "incidents.sre.stratus.dev"):
            names = cluster.kubectl("get", kind, "-n", ns, "-o", "name", check=False).stdout.split()
            for obj in names:
                cluster.kubectl("patch", obj, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                                check=False)
        cluster.kubectl("delete", "namespace", ns, "--timeout=120s", check=False)


class Traffic:
    """Shoppers for tests and benchmarks: orders and catalogue reads through the shop's gateway, a
    few per second, each outcome recorded (status code, 0 for no answer) with its time."""

    def __init__(self, base: str, order_every: int = 4) -> None:
        self.base, self.codes, self.stop = base, [], threading.Event()
        self.order_every = order_every  # one order per N rounds (stock is finite: a long run orders less)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        # About 3 catalogue reads and (order_every=4) 0.7 orders a second: the seed stock (455 items)
        # lasts a test module.
        products = ("P001", "P002", "P004")
        with httpx.Client(timeout=5) as c:
            i = 0
            while not self.stop.is_set():
                calls = [lambda: c.get(f"{self.base}/api/products")]
                if i % self.order_every == 0:
                    pid = products[(i // self.order_every) % len(products)]
                    calls.append(lambda pid=pid: c.post(f"{self.base}/api/orders",
                                                        json={"product_id": pid, "qty": 1, "customer_name": "e2e"}))
                for call in calls:
                    try:
                        self.codes.append((time.monotonic(), call().status_code))
                    except httpx.HTTPError:
                        self.codes.append((time.monotonic(), 0))
                i += 1
                time.sleep(0.3)

    def ok_since(self, t: float) -> bool:
        recent = [c for at, c in self.codes if at >= t]
        return len(recent) >= 6 and all(c in (200, 201) for c in recent)


# Node ports the tests reach from the root namespace (on free host ports): the shop's gateway, Prometheus,
# the local model (charts/llm with service.type=NodePort).
TEST_NODE_PORTS = (30080, 30090, 30081)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    netns.require_root("the cluster test tier")
    name = "t" + uuid.uuid4().hex[:6]
    data = Path(tempfile.mkdtemp(prefix=f"localkube-{name}-"))
    c = Cluster(name, data, mappings=[PortMapping(0, p) for p in TEST_NODE_PORTS])
    try:
        c.up()
        yield c
    finally:
        c.down(quiet=True, purge=True)
        left = leftovers(c)
        if os.environ.get("LOCALKUBE_KEEP_LOGS") is None:
            subprocess.run(["rm", "-rf", str(data)], check=False)
        assert not left, f"the test session left behind: {left}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    ns = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    ns = "".join(ch for ch in ns if ch.isalnum() or ch == "-")
    cluster.kubectl("create", "namespace", ns)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "-f", str(CRDS), "--server-side")
    for path in sorted(CRDS.glob("*.yaml")):
        name = path.name.removesuffix(".yaml")
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return cluster
