"""The project's charts on the process node: the shop's Deployments become Pods that really serve
orders through the gateway's published NodePort, Prometheus (a pod too) discovers and scrapes them
through Kubernetes service discovery, and the usual day-2 operations work: rollout restart without
failed orders, helm upgrade and rollback."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from localkube.cluster import Cluster
from localkube.testing import ROOT, container_pid, shop_namespace, wait_for

SHOP = ("gateway", "order", "product", "payment")


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[str]:
    with shop_namespace(cluster, observability=True) as ns:
        yield ns


def gateway(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.host_port(30080)}"


def order(client: httpx.Client, base: str) -> httpx.Response:
    return client.post(f"{base}/api/orders", json={"product_id": "P002", "qty": 1, "customer_name": "test"})


def test_the_shop_runs_as_pods_and_takes_orders(cluster: Cluster, shop: str) -> None:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", shop, "-o", "json").stdout)["items"]
    names = {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods}
    assert set(SHOP) <= names
    for p in pods:
        assert p["spec"]["nodeName"] == "localkube-node"
        assert p["status"]["phase"] == "Running"
        assert all(c["ready"] for c in p["status"]["containerStatuses"])
    rs = cluster.kubectl("get", "rs", "-n", shop, "-o", "jsonpath={.items[*].status.readyReplicas}").stdout.split()
    assert len(rs) >= 4 and all(r == "1" for r in rs)
    with httpx.Client(timeout=10) as c:
        resp = order(c, gateway(cluster))
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "confirmed"
        assert c.get(f"{gateway(cluster)}/api/orders/{resp.json()['id']}").status_code == 200


def test_service_names_resolve_inside_pods(cluster: Cluster, shop: str) -> None:
    pod = cluster.kubectl("get", "pods", "-n", shop, "-l", "app.kubernetes.io/name=order",
                          "-o", "jsonpath={.items[0].metadata.name}").stdout
    pid = container_pid(cluster, shop, pod, "order")
    svc_ip = cluster.kubectl("get", "svc", "payment", "-n", shop, "-o", "jsonpath={.spec.clusterIP}").stdout
    for name in ("payment", f"payment.{shop}.svc.cluster.local"):
        out = cluster.exec_in_node("nsenter", "-t", str(pid), "-n", "-m", "-r", "--", "python3", "-c",
                                   f"import socket; print(socket.gethostbyname({name!r}))")
        assert out.stdout.strip() == svc_ip, out.stderr


def test_prometheus_discovers_and_scrapes_the_shop_pods(cluster: Cluster, shop: str) -> None:
    base = f"http://127.0.0.1:{cluster.host_port(30090)}"

    def up_jobs() -> set[str]:
        try:
            r = httpx.get(f"{base}/api/v1/query", params={"query": f'up{{namespace="{shop}"}} == 1'}, timeout=5)
            return {x["metric"].get("app") or x["metric"].get("pod", "") for x in r.json()["data"]["result"]}
        except (httpx.HTTPError, KeyError, ValueError):
            return set()
    found = wait_for(lambda: (u := up_jobs()) and all(any(s in p for p in u) for s in SHOP) and u, 90,
                     "every shop pod scraped")
    assert found
    # Container memory from the node agent's /metrics/cadvisor, through the API server's node proxy.
    query = f'container_memory_working_set_bytes{{namespace="{shop}",container="order"}}'
    result = wait_for(lambda: httpx.get(f"{base}/api/v1/query", timeout=5, params={"query": query}
                                        ).json()["data"]["result"], 60, "cAdvisor metrics of the order container")
    assert 10 * 2**20 < float(result[0]["value"][1]) < 256 * 2**20


def test_rollout_restart_loses_no_orders(cluster: Cluster, shop: str) -> None:
    results: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                try:
                    results.append(order(c, gateway(cluster)).status_code)
                except httpx.HTTPError:
                    results.append(0)
                time.sleep(0.05)
    before = cluster.kubectl("get", "pods", "-n", shop, "-l", "app.kubernetes.io/name in (order,payment,product)",
                             "-o", "jsonpath={.items[*].metadata.uid}").stdout.split()
    t = threading.Thread(target=traffic)
    t.start()
    try:
        time.sleep(1)
        cluster.kubectl("rollout", "restart", "-n", shop, "deployment/order", "deployment/payment",
                        "deployment/product")
        for d in ("order", "payment", "product"):
            cluster.kubectl("rollout", "status", "-n", shop, f"deployment/{d}", "--timeout=180s", timeout=200)

        def old_pods_gone() -> bool:  # traffic keeps flowing while the old pods terminate
            now = cluster.kubectl("get", "pods", "-n", shop, "-o", "jsonpath={.items[*].metadata.uid}").stdout.split()
            return not set(before) & set(now)
        wait_for(old_pods_gone, 60, "the old pods to terminate")
        time.sleep(1)
    finally:
        stop.set()
        t.join()
    failed = [code for code in results if code != 201]
    assert len(results) > 20 and not failed, f"{len(failed)} of {len(results)} orders failed: {set(failed)}"


def test_helm_upgrade_and_rollback(cluster: Cluster, shop: str) -> None:
    def timeout_env() -> str:
        return cluster.kubectl("get", "deploy", "order", "-n", shop, "-o",
                               "jsonpath={.spec.template.spec.containers[0].env[?(@.name=='SHOP_HTTP_TIMEOUT_S')].value}"
                               ).stdout
    original = timeout_env()
    cluster.helm("upgrade", "shop", str(ROOT / "charts" / "shop"), "-n", shop, "--reuse-values", "--set",
                 "httpTimeoutSeconds=3", "--wait", "--timeout=180s")
    assert timeout_env() != original
    cluster.helm("rollback", "shop", "1", "-n", shop, "--wait", "--timeout=180s")
    assert timeout_env() == original
    history = json.loads(cluster.helm("history", "shop", "-n", shop, "-o", "json").stdout)
    assert [h["revision"] for h in history][-1] == 3 and history[-1]["status"] == "deployed"
    with httpx.Client(timeout=10) as c:
        assert order(c, gateway(cluster)).status_code == 201

