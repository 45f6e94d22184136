"""Fault hooks the fault scenarios use, reachable only when `SHOP_FAULT_HOOKS=true`.

- crashed: a failed state kept until the process restarts (health and API requests answer 503), or
  until `DELETE /fault/crash` (a fault scenario's revert);
- latency_ms / cpu_ms: sleep or busy CPU work added to every API request (product overload);
- leak_kb: memory kept for good on every API request (a leak: the process grows until its
  container's memory limit kills it).
The same can be set at start from `SHOP_FAULT_*` variables, so a fault can be injected through a
Deployment's env alone.
"""
from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from .errors import ShopError
from .metrics import ShopMetrics
from .settings import ShopSettings

# Paths that keep answering in the failed state, so the fault stays observable.
_ALWAYS_ANSWER = ("/metrics", "/fault")


class FaultState:
    def __init__(self, settings: ShopSettings, metrics: ShopMetrics | None = None) -> None:
        self.crashed = settings.fault_crashed
        self.latency_ms = settings.fault_latency_ms
        self.cpu_ms = settings.fault_cpu_ms
        self.leak_kb = settings.fault_leak_kb
        self.kept: list[bytes] = []
        self.metrics = metrics

    def leak(self) -> None:
        # Filled bytes, not zeros: every page is touched, so the memory is really resident.
        self.kept.append(b"\x5a" * (self.leak_kb * 1024))
        if self.metrics is not None:
            self.metrics.memory_kept.labels(self.metrics.service).set(len(self.kept) * self.leak_kb * 1024)

    def as_dict(self) -> dict[str, object]:
        return {"crashed": self.crashed, "latency_ms": self.latency_ms, "cpu_ms": self.cpu_ms,
                "leak_kb": self.leak_kb, "kept_bytes": sum(len(b) for b in self.kept)}


def burn_cpu(ms: int) -> None:
    deadline = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < deadline:
        x = (x * 31 + 7) % 1_000_003


def gate(state: FaultState):
    """A dependency on every route: runs after routing, so refused and slowed requests are still
    measured under the route they were meant for."""

    async def fault_gate(request: Request) -> None:
        path = request.url.path
        if state.crashed and not path.startswith(_ALWAYS_ANSWER):
            raise ShopError(503, "crashed", "the service is in a failed state")
        if path.startswith("/api/"):
            if state.latency_ms:
                await asyncio.sleep(state.latency_ms / 1000)
            if state.cpu_ms:
                burn_cpu(state.cpu_ms)
            if state.leak_kb:
                state.leak()

    return fault_gate


class Amount(BaseModel):
    ms: int = Field(ge=0, le=60_000)


class Kilobytes(BaseModel):
    kb: int = Field(ge=0, le=65_536)


def router(state: FaultState) -> APIRouter:
    r = APIRouter(prefix="/fault", tags=["faults"])

    @r.get("")
    async def current() -> dict[str, object]:
        return state.as_dict()

    @r.post("/crash")
    async def crash() -> dict[str, object]:
        state.crashed = True
        return state.as_dict()

    @r.delete("/crash")
    async def uncrash() -> dict[str, object]:
        """Leaves the failed state without a restart: how a runtime-mode FaultScenario reverts."""
        state.crashed = False
        return state.as_dict()

    @r.post("/latency")
    async def latency(body: Amount) -> dict[str, object]:
        state.latency_ms = body.ms
        return state.as_dict()

    @r.post("/cpu")
    async def cpu(body: Amount) -> dict[str, object]:
        state.cpu_ms = body.ms
        return state.as_dict()

    @r.post("/leak")
    async def leak(body: Kilobytes) -> dict[str, object]:
        state.leak_kb = body.kb
        return state.as_dict()

    @r.delete("")
    async def clear() -> dict[str, object]:
        """Clears latency, CPU work and the leak (memory kept so far is freed). The failed state
        stays until the process restarts."""
        state.latency_ms = 0
        state.cpu_ms = 0
        state.leak_kb = 0
        state.kept.clear()
        return state.as_dict()

    return r
