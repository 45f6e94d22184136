"""The NGINX gateway (Debian's nginx with the chart's template) in front of the real services."""
from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shop import procs
from shop.gateway import render_config
from shop.gateway_exporter.tailer import GatewayMetrics
from sre_operator.faults.route_removed import without_route

from .conftest import Shop, scrape_value, wait_for


@pytest.fixture
def gateway(shop: Shop, tmp_path: Path) -> Iterator[str]:
    port = procs.free_port()
    gw = procs.gateway(port, tmp_path / "gateway", order=f"127.0.0.1:{shop.ports['order']}",
                       product=f"127.0.0.1:{shop.ports['product']}").start().wait_healthy()
    yield f"http://127.0.0.1:{port}"
    gw.stop()


def test_routes_reach_each_service(shop: Shop, gateway: str) -> None:
    assert httpx.get(f"{gateway}/nginx-health").json() == {"status": "ok", "service": "gateway"}
    assert [p["id"] for p in httpx.get(f"{gateway}/api/products").json()][:2] == ["P001", "P002"]
    order = httpx.post(f"{gateway}/api/orders", json={"product_id": "P001", "qty": 1, "customer_name": "Demo User"})
    assert order.status_code == 201 and order.json()["status"] == "confirmed"
    assert httpx.get(f"{gateway}/api/orders/{order.json()['id']}").json()["id"] == order.json()["id"]
    assert httpx.get(f"{gateway}/api/products/P001").json()["id"] == "P001"
    resp = httpx.get(f"{gateway}/somewhere/else")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


# What a shopper has no business calling: the saga's own calls to product and payment, and the
# list of every order with its customer's name (issue "Trust boundaries"). Encoded and dotted
# spellings of the same paths are tried too: NGINX matches the decoded, normalised path.
HOSTILE = [
    ("POST", "/api/products/P001/reservations", {"reservation_id": "grab-all", "qty": 1000}),
    ("POST", "/api/products/P001%2Freservations", {"reservation_id": "grab-enc", "qty": 1000}),
    ("POST", "/api/orders/../products/P001/reservations", {"reservation_id": "grab-dot", "qty": 1000}),
    ("DELETE", "/api/products/P001/reservations/{order}", None),
    ("POST", "/api/products/P001/reservations/{order}/confirm", None),
    ("POST", "/api/payments", {"order_id": "free", "amount": 1.0, "customer_name": "x"}),
    ("GET", "/api/payments/{payment}", None),
    ("GET", "/api/payments?order_id={order}", None),
    ("GET", "/api/orders", None),
    ("GET", "/api/orders?limit=500", None),
    ("DELETE", "/api/orders/{order}", None),
    ("POST", "/api/products/P001", {}),
]


def test_the_gateway_exposes_only_what_a_shopper_uses(shop: Shop, gateway: str) -> None:
    order = httpx.post(f"{gateway}/api/orders", json={"product_id": "P001", "qty": 1, "customer_name": "Secret Name"})
    assert order.status_code == 201
    ids = {"order": order.json()["id"], "payment": order.json()["payment_id"]}
    stock = shop.stock("P001")
    host, port = gateway.removeprefix("http://").split(":")
    for method, path, body in HOSTILE:
        # http.client sends the path as written (httpx would resolve `..` before sending).
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(method, path.format(**ids), body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        assert resp.status in (403, 404), (method, path, resp.status, text)
        assert "Secret Name" not in text
        if resp.status == 403:
            assert json.loads(text)["error"]["code"] == "forbidden"
    # Nothing reached a service: stock untouched, one payment for the order, the order as placed.
    assert shop.stock("P001") == stock
    payments = httpx.get(f"{shop.url('payment')}/api/payments", params={"order_id": "free"}).json()
    assert payments["count"] == 0
    assert httpx.get(f"{gateway}/api/orders/{ids['order']}").json()["status"] == "confirmed"
    # The saga itself still makes these calls, service to service.
    assert shop.order("P001").json()["status"] == "confirmed" and shop.stock("P001") == stock - 1


def test_upstream_down_is_a_json_502(shop: Shop, gateway: str) -> None:
    shop.stop("product")
    resp = httpx.get(f"{gateway}/api/products")
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "bad_gateway"
    # The other routes still work (the order service itself answers that it has no such order).
    resp = httpx.get(f"{gateway}/api/orders/ORD-NONE")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "order_not_found"


def test_access_log_is_json_with_upstream_status(shop: Shop, gateway: str, tmp_path: Path) -> None:
    httpx.get(f"{gateway}/api/products")
    shop.stop("order")
    httpx.get(f"{gateway}/api/orders/ORD-1")
    log = tmp_path / "gateway" / "access.json"

    def both_logged() -> list[dict] | None:
        entries = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
        return entries if {"/api/products", "/api/orders/ORD-1"} <= {e["uri"] for e in entries} else None

    entries = wait_for(both_logged, what="access log lines for both requests")
    ok = next(e for e in entries if e["uri"] == "/api/products")
    assert ok["status"] == 200 and ok["upstream_status"] == "200" and ok["request_time"] >= 0
    bad = next(e for e in entries if e["uri"] == "/api/orders/ORD-1")
    assert bad["status"] == 502 and bad["upstream_status"].startswith("502")


def test_exporter_turns_the_access_log_into_metrics(shop: Shop, gateway: str, tmp_path: Path) -> None:
    port = procs.free_port()
    exporter = procs.ManagedProcess(
        "gateway-exporter", [sys.executable, "-m", "shop.gateway_exporter"], tmp_path / "exporter.log",
        {"SHOP_ACCESS_LOG": str(tmp_path / "gateway" / "access.json"), "SHOP_HOST": "127.0.0.1",
         "SHOP_PORT": str(port)}, f"http://127.0.0.1:{port}/metrics").start().wait_healthy()
    try:
        for _ in range(4):
            httpx.get(f"{gateway}/api/products")
        shop.stop("product")
        for _ in range(2):
            httpx.get(f"{gateway}/api/products/P001")

        def counts() -> tuple[float | None, float | None]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return (scrape_value(text, "gateway_http_requests_total", route="/api/products", code="200"),
                    scrape_value(text, "gateway_http_requests_total", route="/api/products", code="502"))

        wait_for(lambda: counts() == (4.0, 2.0), what="exporter counts 4 OK and 2 bad gateway")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert scrape_value(text, "gateway_upstream_errors_total", route="/api/products") == 2.0
        assert scrape_value(text, "gateway_http_request_duration_seconds_count", route="/api/products") == 6.0
    finally:
        exporter.stop()


def test_a_removed_route_still_reads_as_unrouted_and_a_refused_one_does_not(shop: Shop, tmp_path: Path) -> None:
    """The route-removed fault takes out the exact `/api/products` location: NGINX then answers
    that path 404 with no upstream, which the exporter counts as unrouted (the detector's signal).
    A shopper probing an internal path gets 403, which must not look like a missing route."""
    work, port = tmp_path / "gw-removed", procs.free_port()
    work.mkdir()
    conf = render_config(listen=f"127.0.0.1:{port}", run_dir=str(work), order=f"127.0.0.1:{shop.ports['order']}",
                         product=f"127.0.0.1:{shop.ports['product']}", access_log=str(work / "access.json"))
    (work / "nginx.conf").write_text(without_route(conf, "/api/products"))
    gw = procs.ManagedProcess("gateway", [procs.NGINX, "-e", "/dev/stderr", "-p", str(work), "-c",
                                          str(work / "nginx.conf"), "-g", "daemon off;"],
                              work / "nginx.log", None, f"http://127.0.0.1:{port}/nginx-health").start()
    try:
        gw.wait_healthy()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/products").status_code == 404
        assert httpx.get(f"{base}/api/products/P001").status_code == 200  # the by-id location stays
        assert httpx.post(f"{base}/api/products/P001/reservations", json={}).status_code == 403
        assert httpx.get(f"{base}/api/orders").status_code == 403
        log = work / "access.json"
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 4, what="4 access log lines")
        registry = CollectorRegistry()
        metrics = GatewayMetrics(registry)
        for line in log.read_text().splitlines():
            metrics.observe(line)
        text = generate_latest(registry).decode()
        assert scrape_value(text, "gateway_unrouted_requests_total", route="/api/products") == 1.0
        assert scrape_value(text, "gateway_unrouted_requests_total", route="/api/orders") is None
    finally:
        gw.stop()
