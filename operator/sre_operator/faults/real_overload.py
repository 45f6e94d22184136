"""real-overload: the shop's idle load generator Deployment scaled up (`parameters.replicas`,
default 1) at `parameters.rps` requests a second (default 80): real requests, no fault hook."""
from __future__ import annotations

import copy
from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultSpec, Params
from .changes import container, with_env

DEFAULT_OVERLOAD_RPS = 80


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    meta, ctr = obj["metadata"], container(obj)
    rps = str(params.get("rps") or DEFAULT_OVERLOAD_RPS)
    replicas = int(params.get("replicas") or 1)
    original = copy.deepcopy(ctr.get("env") or [])
    return Change("Deployment", meta["namespace"], meta["name"],
                  desired={"container": ctr["name"], "env": with_env(original, {"SHOP_TRAFFIC_RPS": rps}),
                           "replicas": replicas},
                  snapshot={"container": ctr["name"], "env": original,
                            "replicas": int(obj["spec"].get("replicas", 0))},
                  change=f"load generator on: {replicas} × {rps} requests/s")


SPEC = FaultSpec(FaultType.REAL_OVERLOAD, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "a load generator sends more than product can serve → queueing, high P95")
