"""product-overload: the service's fault hooks `SHOP_FAULT_LATENCY_MS` / `SHOP_FAULT_CPU_MS` on every
API request (`parameters.latencyMs`, `parameters.cpuMs`).

`parameters.mode: runtime`: no rollout; every Ready pod's process is slowed through
`POST /fault/latency` / `POST /fault/cpu` {"ms": N} (a restart heals it). Reverted with `DELETE /fault`."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, HookCall, Params
from .changes import env_change, runtime_change

HOOKS = {"latencyMs": "SHOP_FAULT_LATENCY_MS", "cpuMs": "SHOP_FAULT_CPU_MS"}
RUNTIME_HOOKS = {"latencyMs": "/fault/latency", "cpuMs": "/fault/cpu"}


def _given(params: Params) -> list[str]:
    found = [p for p in HOOKS if params.get(p)]
    if not found:
        raise FaultError("product-overload needs parameters.latencyMs or parameters.cpuMs")
    return found


def _amounts(params: Params) -> dict[str, int]:
    given = _given(params)
    try:
        return {p: int(params[p]) for p in given}
    except (TypeError, ValueError):
        raise FaultError("product-overload: parameters.latencyMs and cpuMs are whole milliseconds") from None


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    return env_change(obj, {HOOKS[p]: str(params[p]) for p in _given(params)}, "overload")


def runtime(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    amounts = _amounts(params)
    calls = [HookCall("POST", RUNTIME_HOOKS[p], {"ms": ms}) for p, ms in amounts.items()]
    what = "overload: " + ", ".join(f"{p}={ms}" for p, ms in amounts.items())
    return runtime_change(obj, calls, [HookCall("DELETE", "/fault")], what)


SPEC = FaultSpec(FaultType.PRODUCT_OVERLOAD, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "product answers 800 ms slower → P95 latency far above its SLO", runtime=runtime)
