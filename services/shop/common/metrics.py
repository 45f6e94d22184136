"""Prometheus metrics for a shop service: requests by route template and code, latency, outbound calls.

Each app gets its own registry, so several apps can live in one process (tests) without clashing.
The route label is the route *template* (`/api/products/{product_id}`), never the raw path, so a
scanner cannot blow up the series count; unmatched paths are counted as `other`.
"""
from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Dense between 50 ms and 1 s, where a P95 SLO of a few hundred milliseconds is judged.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0,
                   1.5, 2.0, 3.0, 5.0, 10.0)


class ShopMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter("shop_http_requests_total", "HTTP requests answered",
                                ["service", "route", "method", "code"], registry=self.registry)
        self.latency = Histogram("shop_http_request_duration_seconds", "HTTP request latency",
                                 ["service", "route", "method"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.outbound = Counter("shop_outbound_requests_total", "Calls to other services",
                                ["service", "target", "outcome"], registry=self.registry)
        self.breaker_state = Gauge("shop_circuit_breaker_state",
                                   "Circuit breaker state per target: 0 closed, 1 open, 2 half-open",
                                   ["service", "target"], registry=self.registry)

        self.pool_in_use = Gauge("shop_db_pool_in_use", "Database connections in use",
                                 ["service"], registry=self.registry)
        self.pool_waiting = Gauge("shop_db_pool_waiting", "Queries waiting for a database connection",
                                  ["service"], registry=self.registry)
        self.pool_size = Gauge("shop_db_pool_size", "Database connections in the pool (0: unbounded)",
                               ["service"], registry=self.registry)
        # The business outcome: orders placed, by how they ended (confirmed, or failed and why).
        self.orders = Counter("shop_orders_total", "Orders placed, by outcome",
                              ["service", "outcome", "reason"], registry=self.registry)
        self.memory_kept = Gauge("shop_fault_memory_kept_bytes", "Memory kept by the memory-leak fault hook",
                                 ["service"], registry=self.registry)

    def pool_changed(self, in_use: int, waiting: int) -> None:
        self.pool_in_use.labels(self.service).set(in_use)
        self.pool_waiting.labels(self.service).set(waiting)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: times every HTTP request and counts it by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ShopMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = getattr(scope.get("route"), "path", None) or "other"
            if template != "/metrics":
                method = scope.get("method", "GET")
                self.metrics.requests.labels(self.metrics.service, template, method, str(status)).inc()
                self.metrics.latency.labels(self.metrics.service, template, method).observe(
                    time.perf_counter() - start)
