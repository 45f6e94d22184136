"""`make bench`: figures, not assertions. Prints a table of what it measured on this machine.

- shop: order latency through the real NGINX gateway (sequential and 8 concurrent clients) and each
  service's resident memory after the run;
- localkube: warm `up` time of a cluster (control plane, node agent, kube-proxy, CoreDNS) and
  `down` time; on the process node: pod create → Ready latency, `helm install` of the shop, orders
  through the published NodePort, the node agent's and shims' memory, 1000 pods on kwok nodes
  (needs root; skipped with a note otherwise).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from shop import procs


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
    return kb / 1024


def _pids_running(needle: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and needle.encode() in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except OSError:
            pass
    return found


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def bench_shop(n: int = 100) -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        ports = {s: procs.free_port() for s in ("product", "payment", "order", "gateway")}
        started = []
        try:
            for s in ("product", "payment"):  # one by one: `finally` stops what has started
                started.append(procs.service(s, ports[s], data).start())  # noqa: PERF401
            started.append(procs.service("order", ports["order"], data,
                                         SHOP_PRODUCT_URL=f"http://127.0.0.1:{ports['product']}",
                                         SHOP_PAYMENT_URL=f"http://127.0.0.1:{ports['payment']}").start())
            started.append(procs.gateway(ports["gateway"], data / "gw", order=f"127.0.0.1:{ports['order']}",
                                         product=f"127.0.0.1:{ports['product']}").start())
            for p in started:
                p.wait_healthy()
            url = f"http://127.0.0.1:{ports['gateway']}/api/orders"
            with httpx.Client() as client:
                def one(_i: int, product: str = "P002") -> float:
                    t = time.perf_counter()
                    r = client.post(url, json={"product_id": product, "qty": 1, "customer_name": "Bench"})
                    assert r.status_code == 201, r.text
                    return time.perf_counter() - t

                seq = [one(i) for i in range(n)]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    conc = list(pool.map(lambda i: one(i, "P001"), range(n)))  # seeded stock: 100 of P001
                wall = time.perf_counter() - t0
            rows.append(
                (
                    "order via gateway, sequential",
                    f"p50 {pct(seq, 0.5) * 1000:.1f} ms, p95 {pct(seq, 0.95) * 1000:.1f} ms ({n} orders)",
                )
            )
            rows.append(
                (
                    "order via gateway, 8 clients",
                    f"p50 {pct(conc, 0.5) * 1000:.1f} ms, p95 {pct(conc, 0.95) * 1000:.1f} ms, {n / wall:.0f} orders/s",
                )
            )
            for p in started[:3]:
                assert p.proc is not None
                rows.append((f"{p.name} RSS after {2 * n} orders", f"{rss_mib(p.proc.pid):.0f} MiB"))
        finally:
            for p in started:
                p.stop()
    return rows


def bench_cluster(runs: int = 3) -> list[tuple[str, str]]:
    if os.geteuid() != 0:
        return [("localkube up", "skipped: needs root")]
    from localkube.cluster import Cluster

    ups, downs = [], []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            c = Cluster(f"bench{i}", Path(tmp) / "c")
            t = time.perf_counter()
            c.up()
            ups.append(time.perf_counter() - t)
            t = time.perf_counter()
            c.down(quiet=True, purge=True)
            downs.append(time.perf_counter() - t)
    return [
        (
            "localkube up (warm binaries)",
            f"median {statistics.median(ups):.1f} s over {runs} (min {min(ups):.1f}, max {max(ups):.1f})",
        ),
        ("localkube down", f"median {statistics.median(downs):.1f} s"),
    ]


def _pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def bench_node(pods: int = 10) -> list[tuple[str, str]]:
    """The process node: pod create → Ready, the shop on it, the agent's memory, kwok at scale."""
    if os.geteuid() != 0:
        return [("localkube node agent", "skipped: needs root")]
    import json

    from localkube import kwok
    from localkube.cluster import Cluster, PortMapping
    from localkube.testing import ROOT

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster("benchnode", Path(tmp) / "c", mappings=[PortMapping(0, 30080)])
        c.up()
        try:
            with c._client() as api:  # noqa: SLF001 - the benchmark times the raw API
                base = "/api/v1/namespaces/default/pods"
                lat = []
                for i in range(pods):
                    t = time.perf_counter()
                    api.post(base, json=_pod(f"seq-{i}")).raise_for_status()
                    while not _ready(api.get(f"{base}/seq-{i}").json()):
                        time.sleep(0.02)
                    lat.append(time.perf_counter() - t)
                rows.append(("pod create → Ready (one at a time)",
                             f"p50 {pct(lat, .5) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms over {pods}"))
                t = time.perf_counter()
                for i in range(20):
                    api.post(base, json=_pod(f"burst-{i}")).raise_for_status()
                while not all(_ready(api.get(f"{base}/burst-{i}").json()) for i in range(20)):
                    time.sleep(0.1)
                rows.append(("20 pods created at once → all Ready", f"{time.perf_counter() - t:.1f} s"))
            t = time.perf_counter()
            c.helm("install", "shop", str(ROOT / "charts" / "shop"), "--wait", "--timeout=300s")
            rows.append(("helm install shop --wait (4 Deployments, 3 PVCs)", f"{time.perf_counter() - t:.1f} s"))
            gw = f"http://127.0.0.1:{c.host_port(30080)}"
            with httpx.Client(timeout=10) as h:
                lat = []
                for _ in range(50):
                    t = time.perf_counter()
                    r = h.post(f"{gw}/api/orders", json={"product_id": "P002", "qty": 1, "customer_name": "b"})
                    lat.append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text
            rows.append(("order via NodePort → gateway pod → order → product/payment",
                         f"p50 {pct(lat, .5) * 1000:.1f} ms, p95 {pct(lat, .95) * 1000:.1f} ms"))
            agent = int(c.state()["pids"]["node-agent"])
            rows.append(("node agent RSS (shop + 30 pods running)", f"{rss_mib(agent):.0f} MiB"))
            shims = [rss_mib(p) for p in _pids_running("localkube.node.shim")]
            rows.append(("container shims (one per container)",
                         f"{len(shims)} × {statistics.mean(shims):.1f} MiB RSS"))
            if kwok.find_kwok():
                c.start_kwok()
                names = kwok.add_nodes(c, 5)
                t = time.perf_counter()
                deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fleet"},
                          "spec": {"replicas": 1000, "selector": {"matchLabels": {"app": "fleet"}},
                                   "template": {"metadata": {"labels": {"app": "fleet"}},
                                                "spec": {**kwok.ON_KWOK,
                                                         "containers": [{"name": "c", "image": "x"}]}}}}
                c.apply(json.dumps(deploy))
                c.kubectl("rollout", "status", "deployment/fleet", "--timeout=600s", timeout=620)
                rows.append((f"1000 pods on {len(names)} kwok nodes → Running", f"{time.perf_counter() - t:.1f} s"))
        finally:
            c.down(quiet=True, purge=True)
    return rows


def main() -> None:
    rows = bench_shop() + bench_cluster() + bench_node()
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  figure")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
