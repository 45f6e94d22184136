"""Circuit breaker, fault hooks, tracing and logs, against real processes."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .conftest import Shop, wait_for


def test_circuit_breaker_opens_fails_fast_and_recovers(make_shop) -> None:
    shop = make_shop(order={"SHOP_BREAKER_FAILURES": "3", "SHOP_BREAKER_RESET_S": "1.5",
                            "SHOP_HTTP_RETRIES": "0"})
    for name in ("product", "payment", "order"):
        shop.start(name)
    assert shop.metric("order", "shop_circuit_breaker_state", target="payment") == 0
    shop.stop("payment")
    for _ in range(3):
        assert shop.order().json()["steps"][1]["kind"] == "unavailable"
    assert shop.metric("order", "shop_circuit_breaker_state", target="payment") == 1
    fast = shop.order().json()
    assert fast["status"] == "failed" and "circuit to payment is open" in fast["reason"]
    assert shop.metric("order", "shop_outbound_requests_total", target="payment", outcome="rejected") == 1
    shop.start("payment")
    # After the reset period one probe goes through; it succeeds, so the circuit closes.
    resp = wait_for(lambda: (r := shop.order()).status_code == 201 and r, timeout=10, interval=0.3,
                    what="an order to succeed once the circuit half-opens")
    assert resp.json()["status"] == "confirmed"
    assert shop.metric("order", "shop_circuit_breaker_state", target="payment") == 0


def test_fault_hooks_are_absent_unless_enabled(shop: Shop) -> None:
    for name in ("product", "payment", "order"):
        assert httpx.post(f"{shop.url(name)}/fault/crash").status_code == 404
    assert httpx.get(f"{shop.url('product')}/health").status_code == 200


def test_crash_state_persists_until_restart(make_shop) -> None:
    shop = make_shop(payment={"SHOP_FAULT_HOOKS": "true"})
    for name in ("product", "payment", "order"):
        shop.start(name)
    httpx.post(f"{shop.url('payment')}/fault/crash").raise_for_status()
    assert httpx.get(f"{shop.url('payment')}/health").status_code == 503
    assert httpx.get(f"{shop.url('payment')}/ready").status_code == 503
    assert httpx.get(f"{shop.url('payment')}/api/payments/X").status_code == 503
    httpx.delete(f"{shop.url('payment')}/fault").raise_for_status()  # clears latency/cpu, not the crash
    assert httpx.get(f"{shop.url('payment')}/health").status_code == 503
    order = shop.order().json()
    assert order["status"] == "failed"
    # Requests refused in the failed state still count under the route they were meant for.
    assert shop.metric("payment", "shop_http_requests_total", route="/api/payments/{payment_id}", code="503") == 1
    # order charged once and retried twice (SHOP_HTTP_RETRIES=2): idempotent, so retries are allowed
    assert shop.metric("payment", "shop_http_requests_total", route="/api/payments", code="503") == 3
    shop.restart("payment")
    assert httpx.get(f"{shop.url('payment')}/health").status_code == 200
    assert shop.order().status_code == 201


def test_crash_from_the_environment(make_shop) -> None:
    shop = make_shop(payment={"SHOP_FAULT_CRASHED": "true"})
    shop.start("payment", wait=False)
    wait_for(lambda: httpx.get(f"{shop.url('payment')}/health").status_code == 503 if _up(shop) else False,
             what="payment to answer, failed")


def _up(shop: Shop) -> bool:
    try:
        httpx.get(f"{shop.url('payment')}/metrics", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_latency_and_cpu_hooks_show_in_the_histogram(make_shop) -> None:
    shop = make_shop(product={"SHOP_FAULT_HOOKS": "true"})
    shop.start("product")
    httpx.post(f"{shop.url('product')}/fault/latency", json={"ms": 220}).raise_for_status()
    for _ in range(3):
        httpx.get(f"{shop.url('product')}/api/products", timeout=5)
    slow = shop.metric("product", "shop_http_request_duration_seconds_bucket", route="/api/products", le="0.2")
    total = shop.metric("product", "shop_http_request_duration_seconds_count", route="/api/products")
    assert total == 3 and slow == 0
    httpx.delete(f"{shop.url('product')}/fault").raise_for_status()
    httpx.post(f"{shop.url('product')}/fault/cpu", json={"ms": 120}).raise_for_status()
    httpx.get(f"{shop.url('product')}/api/products", timeout=5)
    assert shop.metric("product", "shop_http_request_duration_seconds_bucket", route="/api/products", le="0.1") == 0
    assert httpx.post(f"{shop.url('product')}/fault/latency", json={"ms": -5}).status_code == 422


class _OtlpReceiver(ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver: records (service name, trace id, span name) per span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            receiver.spans.append((service, span.trace_id.hex(), span.name))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def otlp() -> _OtlpReceiver:
    server = _OtlpReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_trace_context_propagates_order_to_product_and_payment(make_shop, otlp: _OtlpReceiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    shop = make_shop(product=env, payment=env, order=env)
    for name in ("product", "payment", "order"):
        shop.start(name)
    order = shop.order().json()

    def one_trace_in_all_three() -> str | None:
        services_by_trace: dict[str, set[str]] = {}
        for service, trace_id, _ in otlp.spans:
            services_by_trace.setdefault(trace_id, set()).add(service)
        return next((t for t, s in services_by_trace.items() if s >= {"order", "product", "payment"}), None)

    trace_id = wait_for(one_trace_in_all_three, timeout=15, what="one trace spanning order, product, payment")
    # The order's own log line carries that trace id.
    lines = [json.loads(ln) for ln in (shop.data / "logs" / "order.log").read_text().splitlines()
             if ln.startswith("{")]
    confirmed = [ln for ln in lines if ln.get("order_id") == order["id"]]
    assert confirmed and confirmed[0]["trace_id"] == trace_id and confirmed[0]["service"] == "order"


def test_no_exporter_without_an_endpoint(shop: Shop) -> None:
    # Logs still carry trace ids (a tracer provider is always set), and nothing tries to export.
    order = shop.order().json()
    lines = [json.loads(ln) for ln in (shop.data / "logs" / "order.log").read_text().splitlines()
             if ln.startswith("{")]
    line = next(ln for ln in lines if ln.get("order_id") == order["id"])
    assert len(line["trace_id"]) == 32
    assert "Failed to export" not in (shop.data / "logs" / "order.log").read_text()
