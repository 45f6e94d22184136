"""The NGINX gateway (Debian's nginx with the chart's template) in front of the real services."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shop import procs

from .conftest import Shop, scrape_value, wait_for


@pytest.fixture
def gateway(shop: Shop, tmp_path: Path) -> Iterator[str]:
    port = procs.free_port()
    gw = procs.gateway(port, tmp_path / "gateway", order=f"127.0.0.1:{shop.ports['order']}",
                       product=f"127.0.0.1:{shop.ports['product']}",
                       payment=f"127.0.0.1:{shop.ports['payment']}").start().wait_healthy()
    yield f"http://127.0.0.1:{port}"
    gw.stop()


def test_routes_reach_each_service(shop: Shop, gateway: str) -> None:
    assert httpx.get(f"{gateway}/nginx-health").json() == {"status": "ok", "service": "gateway"}
    assert [p["id"] for p in httpx.get(f"{gateway}/api/products").json()][:2] == ["P001", "P002"]
    order = httpx.post(f"{gateway}/api/orders", json={"product_id": "P001", "qty": 1, "customer_name": "Demo User"})
    assert order.status_code == 201 and order.json()["status"] == "confirmed"
    assert httpx.get(f"{gateway}/api/orders/{order.json()['id']}").json()["id"] == order.json()["id"]
    assert httpx.get(f"{gateway}/api/payments/{order.json()['payment_id']}").json()["status"] == "approved"
    resp = httpx.get(f"{gateway}/somewhere/else")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_upstream_down_is_a_json_502(shop: Shop, gateway: str) -> None:
    shop.stop("product")
    resp = httpx.get(f"{gateway}/api/products")
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "bad_gateway"
    # The other routes still work.
    assert httpx.get(f"{gateway}/api/orders").status_code == 200


def test_access_log_is_json_with_upstream_status(shop: Shop, gateway: str, tmp_path: Path) -> None:
    httpx.get(f"{gateway}/api/products")
    shop.stop("payment")
    httpx.get(f"{gateway}/api/payments/PAY-1")
    log = tmp_path / "gateway" / "access.json"

    def both_logged() -> list[dict] | None:
        entries = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
        return entries if {"/api/products", "/api/payments/PAY-1"} <= {e["uri"] for e in entries} else None

    entries = wait_for(both_logged, what="access log lines for both requests")
    ok = next(e for e in entries if e["uri"] == "/api/products")
    assert ok["status"] == 200 and ok["upstream_status"] == "200" and ok["request_time"] >= 0
    bad = next(e for e in entries if e["uri"] == "/api/payments/PAY-1")
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
