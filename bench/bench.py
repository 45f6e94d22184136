"""`make bench`: figures, not assertions. Prints a table of what it measured on this machine.

- shop: order latency through the real NGINX gateway (sequential and 8 concurrent clients) and each
  service's resident memory after the run;
- localkube: warm `up` time of a cluster (control plane, kube-proxy, CoreDNS) and `down` time
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


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def bench_shop(n: int = 100) -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        ports = {s: procs.free_port() for s in ("product", "payment", "order", "gateway")}
        started = []
        try:
            for s in ("product", "payment"):
                started.append(procs.service(s, ports[s], data).start())
            started.append(procs.service("order", ports["order"], data,
                                         SHOP_PRODUCT_URL=f"http://127.0.0.1:{ports['product']}",
                                         SHOP_PAYMENT_URL=f"http://127.0.0.1:{ports['payment']}").start())
            started.append(procs.gateway(ports["gateway"], data / "gw", order=f"127.0.0.1:{ports['order']}",
                                         product=f"127.0.0.1:{ports['product']}",
                                         payment=f"127.0.0.1:{ports['payment']}").start())
            for p in started:
                p.wait_healthy()
            url = f"http://127.0.0.1:{ports['gateway']}/api/orders"
            with httpx.Client() as client:
                def one(i: int, product: str = "P002") -> float:
                    t = time.perf_counter()
                    r = client.post(url, json={"product_id": product, "qty": 1, "customer_name": "Bench"})
                    assert r.status_code == 201, r.text
                    return time.perf_counter() - t

                seq = [one(i) for i in range(n)]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    conc = list(pool.map(lambda i: one(i, "P001"), range(n)))  # seeded stock: 100 of P001
                wall = time.perf_counter() - t0
            rows.append(("order via gateway, sequential", f"p50 {pct(seq, .5)*1000:.1f} ms, p95 {pct(seq, .95)*1000:.1f} ms ({n} orders)"))
            rows.append(("order via gateway, 8 clients", f"p50 {pct(conc, .5)*1000:.1f} ms, p95 {pct(conc, .95)*1000:.1f} ms, {n / wall:.0f} orders/s"))
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
    return [("localkube up (warm binaries)", f"median {statistics.median(ups):.1f} s over {runs} (min {min(ups):.1f}, max {max(ups):.1f})"),
            ("localkube down", f"median {statistics.median(downs):.1f} s")]


def main() -> None:
    rows = bench_shop() + bench_cluster()
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  figure")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
