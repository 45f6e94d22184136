"""product-overload: the service's fault hooks `SHOP_FAULT_LATENCY_MS` / `SHOP_FAULT_CPU_MS` on every
API request (`parameters.latencyMs`, `parameters.cpuMs`)."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, Params
from .changes import env_change

HOOKS = {"latencyMs": "SHOP_FAULT_LATENCY_MS", "cpuMs": "SHOP_FAULT_CPU_MS"}


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    values = {env: str(params[p]) for p, env in HOOKS.items() if params.get(p)}
    if not values:
        raise FaultError("product-overload needs parameters.latencyMs or parameters.cpuMs")
    return env_change(obj, values, "overload")


SPEC = FaultSpec(FaultType.PRODUCT_OVERLOAD, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "product answers 800 ms slower → P95 latency far above its SLO")
