"""memory-leak: a new revision with the service's leak hook (`SHOP_FAULT_LEAK_KB`): memory kept on
every request until the container's limit kills it (OOMKilled, restarts)."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, Params
from .changes import env_change

DEFAULT_LEAK_KB = 4096


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    kb = int(params.get("leakKbPerRequest") or DEFAULT_LEAK_KB)
    return env_change(obj, {"SHOP_FAULT_LEAK_KB": str(kb)}, "a new revision that leaks memory")


SPEC = FaultSpec(FaultType.MEMORY_LEAK, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "a product revision leaks memory → OOM kills, restarts")
