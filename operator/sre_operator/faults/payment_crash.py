"""payment-crash: the service's fault hook `SHOP_FAULT_CRASHED` with a Recreate rollout, so every
pod goes: health and API answer 503, liveness restarts it again and again.

`parameters.mode: runtime`: no rollout; every Ready pod's process is flipped into its failed state
through `POST /fault/crash` (a rollback has nothing to undo, a restart heals it). Reverted with
`DELETE /fault/crash` on the pods still there."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, HookCall, Params
from .changes import env_change, runtime_change


def plan(obj: Obj, _params: Params, _deployments: Sequence[Obj]) -> Change:
    return env_change(obj, {"SHOP_FAULT_CRASHED": "true"}, "crashed state, Recreate rollout", recreate=True)


def runtime(obj: Obj, _params: Params, _deployments: Sequence[Obj]) -> Change:
    return runtime_change(obj, [HookCall("POST", "/fault/crash")], [HookCall("DELETE", "/fault/crash")],
                          "crashed state")


SPEC = FaultSpec(FaultType.PAYMENT_CRASH, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "payment goes into a failed state → orders cannot be paid", runtime=runtime)
