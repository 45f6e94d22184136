"""payment-crash: the service's fault hook `SHOP_FAULT_CRASHED` with a Recreate rollout, so every
pod goes: health and API answer 503, liveness restarts it again and again."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, Params
from .changes import env_change


def plan(obj: Obj, _params: Params, _deployments: Sequence[Obj]) -> Change:
    return env_change(obj, {"SHOP_FAULT_CRASHED": "true"}, "crashed state, Recreate rollout", recreate=True)


SPEC = FaultSpec(FaultType.PAYMENT_CRASH, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "payment goes into a failed state → orders cannot be paid")
