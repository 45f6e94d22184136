"""bad-rollout: a new revision whose pods crash. The rolling update keeps the old pods serving and
stalls, as a bad deploy does where maxUnavailable is 0."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, Params
from .changes import env_change


def plan(obj: Obj, _params: Params, _deployments: Sequence[Obj]) -> Change:
    return env_change(obj, {"SHOP_FAULT_CRASHED": "true"}, "a new revision that crashes")


SPEC = FaultSpec(FaultType.BAD_ROLLOUT, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "a new payment revision crashes; the rollout stalls")
