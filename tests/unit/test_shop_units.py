"""Pure pieces of the shop: breaker state machine, template rendering, route bucketing, log following."""
from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from shop.common.breaker import CircuitBreaker, CircuitOpenError, State
from shop.common.settings import ShopSettings, load
from shop.gateway import TEMPLATE, TemplateError, render_config
from shop.gateway_exporter.tailer import Follower, GatewayMetrics, route_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_and_probes_once() -> None:
    clock, seen = Clock(), []
    b = CircuitBreaker("payment", failure_threshold=3, reset_after_s=10, clock=clock, on_change=seen.append)
    for _ in range(2):
        b.before_call()
        b.record_failure()
    assert b.state is State.CLOSED
    b.before_call()
    b.record_failure()
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpenError):
        b.before_call()
    clock.now = 10.0
    assert b.state is State.HALF_OPEN
    b.before_call()  # the one probe
    with pytest.raises(CircuitOpenError):
        b.before_call()  # no second probe while the first is out
    b.record_failure()
    assert b.state is State.OPEN
    clock.now = 20.0
    b.before_call()
    b.record_success()
    assert b.state is State.CLOSED
    assert seen == [State.CLOSED, State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_a_success_resets_the_failure_count() -> None:
    b = CircuitBreaker("x", failure_threshold=2, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is State.CLOSED


def test_render_fills_every_placeholder() -> None:
    text = render_config(listen="8080", order="order:5001", product="product:5002",
                         access_log="/var/log/gateway/access.json")
    assert "@@" not in text
    assert "server order:5001;" in text and "listen 8080;" in text and "pid /tmp/nginx-gateway.pid;" in text


def test_render_refuses_unsafe_values_and_left_placeholders(tmp_path: Path) -> None:
    with pytest.raises(TemplateError):
        render_config(listen="8080; evil", order="o:1", product="p:1", access_log="/x")
    extra = tmp_path / "t.tmpl"
    extra.write_text(TEMPLATE.read_text() + "\n# @@UNKNOWN@@\n")
    with pytest.raises(TemplateError, match="UNKNOWN"):
        render_config(listen="1", order="o:1", product="p:1", access_log="/x", template=extra)


@pytest.mark.parametrize(("uri", "route"), [("/api/orders", "/api/orders"), ("/api/orders/ORD-1?x=1", "/api/orders"),
                                       ("/api/ordersX", "other"), ("/", "other"), ("/api/payments/", "other")])
def test_route_buckets(uri: str, route: str) -> None:
    assert route_of(uri) == route


def test_follower_handles_partial_lines_truncation_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    f = Follower(log)
    assert f.read_lines() == []
    log.write_text('{"a":1}\n{"b"')
    assert f.read_lines() == ['{"a":1}']
    with log.open("a") as fh:
        fh.write(':2}\n')
    assert f.read_lines() == ['{"b":2}']
    log.write_text('{"c":3}\n')  # truncated and rewritten
    assert f.read_lines() == ['{"c":3}']
    log.rename(tmp_path / "access.json.1")
    log.write_text('{"d":4}\n')  # rotated
    assert f.read_lines() == ['{"d":4}']


def test_malformed_lines_are_counted_not_fatal() -> None:
    reg = CollectorRegistry()
    m = GatewayMetrics(reg)
    m.observe("not json")
    m.observe('{"status": 502, "uri": "/api/orders", "request_time": "0.01", "upstream_status": "502"}')
    assert reg.get_sample_value("gateway_log_malformed_lines_total") == 1
    assert (
        reg.get_sample_value(
            "gateway_upstream_errors_total", {"route": "/api/orders", "upstream_status": "502"}
        )
        == 1
    )


def test_a_404_the_gateway_answered_itself_counts_as_unrouted() -> None:
    reg = CollectorRegistry()
    m = GatewayMetrics(reg)
    m.observe('{"status":404,"uri":"/api/products","request_time":"0.000","upstream_status":""}')
    m.observe('{"status":404,"uri":"/api/products/P999","request_time":"0.004","upstream_status":"404"}')
    m.observe('{"status":404,"uri":"/nowhere","request_time":"0.000","upstream_status":""}')
    m.observe('{"status":200,"uri":"/api/products","request_time":"0.004","upstream_status":"200"}')
    # Only the first: the second is the product service's own "no such product", the third no API route.
    assert reg.get_sample_value("gateway_unrouted_requests_total", {"route": "/api/products"}) == 1.0
    assert reg.get_sample_value("gateway_unrouted_requests_total", {"route": "other"}) is None


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_FAULT_LATENCY_MS", "250")
    monkeypatch.setenv("SHOP_BREAKER_FAILURES", "7")
    s = load("product")
    assert (s.port, s.fault_latency_ms, s.breaker_failures) == (5002, 250, 7)
    assert str(s.resolved_db_path()) == "/data/product.db"
    monkeypatch.setenv("SHOP_FAULT_LATENCY_MS", "-1")
    with pytest.raises(ValueError, match="fault_latency_ms"):
        ShopSettings(service="product")


def test_the_fault_hooks_flip_the_process_and_clear_it_again() -> None:
    """What a runtime-mode FaultScenario calls through the pod proxy: the crash is cleared only by a
    restart or its own DELETE /fault/crash (DELETE /fault clears the slow-downs, not the crash)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from shop.common.faults import FaultState, router

    state = FaultState(ShopSettings())
    app = FastAPI()
    app.include_router(router(state))
    with TestClient(app) as http:
        assert http.post("/fault/crash").json()["crashed"] is True
        assert http.post("/fault/latency", json={"ms": 900}).json()["latency_ms"] == 900
        cleared = http.delete("/fault").json()
        assert cleared["latency_ms"] == 0 and cleared["crashed"] is True
        assert http.delete("/fault/crash").json()["crashed"] is False
