"""scale-to-zero: the Deployment scaled to 0 replicas."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, Params


def plan(obj: Obj, _params: Params, _deployments: Sequence[Obj]) -> Change:
    meta, replicas = obj["metadata"], int(obj["spec"].get("replicas", 1))
    return Change("Deployment", meta["namespace"], meta["name"], desired={"replicas": 0},
                  snapshot={"replicas": replicas}, change=f"replicas {replicas} → 0")


SPEC = FaultSpec(FaultType.SCALE_TO_ZERO, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "product scaled to 0 replicas")
