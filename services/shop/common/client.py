"""Outbound HTTP calls between services: a timeout on every call, bounded retries only where the call
is idempotent, and a circuit breaker per target whose state is exported as a metric.

A 5xx answer, a timeout or a connection failure counts against the breaker; a 4xx is the callee's
business answer (out of stock, declined) and is returned to the caller as is.
"""
from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .breaker import CircuitBreaker, CircuitOpenError, State
from .metrics import ShopMetrics


class UpstreamError(Exception):
    """The dependency could not give an answer: kind is `timeout`, `unavailable`, `error` or `rejected`.

    `maybe_done`: some attempt may have reached the callee and been carried out there, its answer
    lost (a read timed out, the connection broke after the request went out). A refused connection
    or an open circuit means it was not sent; a 5xx is an answer (the shop's handlers commit in one
    transaction, so it means nothing was committed). A lost answer says nothing either way.
    """

    def __init__(self, target: str, kind: str, message: str, maybe_done: bool = False) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.kind = kind
        self.message = message
        self.maybe_done = maybe_done


class ServiceClient:
    def __init__(self, target: str, base_url: str, metrics: ShopMetrics, *, timeout_s: float,
                 retries: int, breaker_failures: int, breaker_reset_s: float) -> None:
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics
        self.retries = retries
        gauge = metrics.breaker_state.labels(metrics.service, target)
        self.breaker = CircuitBreaker(target, breaker_failures, breaker_reset_s,
                                      on_change=lambda s: gauge.set(int(s)))
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout_s))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _count(self, outcome: str) -> None:
        self.metrics.outbound.labels(self.metrics.service, self.target, outcome).inc()

    async def request(self, method: str, path: str, *, idempotent: bool, json: Any = None,
                      headers: dict[str, str] | None = None) -> httpx.Response:
        attempts = 1 + (self.retries if idempotent else 0)
        last: UpstreamError | None = None
        maybe_done = False  # whether any attempt so far may have been carried out, its answer lost
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(0.05 * 2 ** attempt, 0.5))
            try:
                self.breaker.before_call()
            except CircuitOpenError as exc:
                self._count("rejected")
                raise UpstreamError(self.target, "rejected", str(exc), maybe_done) from exc
            try:
                resp = await self._http.request(method, path, json=json, headers=headers)
            except httpx.TimeoutException as exc:
                self.breaker.record_failure()
                self._count("timeout")
                maybe_done = maybe_done or not isinstance(exc, httpx.ConnectTimeout)
                last = UpstreamError(self.target, "timeout", f"{method} {path} timed out", maybe_done)
                continue
            except httpx.TransportError as exc:
                self.breaker.record_failure()
                self._count("error")
                maybe_done = maybe_done or not isinstance(exc, httpx.ConnectError)
                last = UpstreamError(self.target, "unavailable", f"{method} {path} failed: {exc!r}", maybe_done)
                continue
            if resp.status_code >= 500:
                self.breaker.record_failure()
                self._count("error")
                last = UpstreamError(self.target, "error", f"{method} {path} answered {resp.status_code}",
                                     maybe_done)
                continue
            self.breaker.record_success()
            self._count("ok")
            return resp
        if last is None:  # the loop makes at least one attempt
            raise RuntimeError(f"{method} {path}: no attempt was made")
        raise last

    @property
    def state(self) -> State:
        return self.breaker.state
