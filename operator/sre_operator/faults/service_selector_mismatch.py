"""service-selector-mismatch: a Service's selector no longer matches its pods (a label renamed on
one side only), or with `parameters.targetPort` a target port no container listens on. The Service
is reverted whole (selector and ports)."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, Fields, Params

NAME_LABEL = "app.kubernetes.io/name"


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    spec, meta = obj["spec"], obj["metadata"]
    selector = dict(spec.get("selector") or {})
    ports = [dict(p) for p in spec.get("ports") or []]
    if not selector or not ports:
        raise FaultError(f"Service {meta['name']} has no selector or no ports to break")
    desired: Fields
    if params.get("targetPort"):
        desired = {"selector": selector, "ports": [{**p, "targetPort": params["targetPort"]} for p in ports]}
        what = f"targetPort → {params['targetPort']}"
    else:
        key = NAME_LABEL if NAME_LABEL in selector else min(selector)
        desired = {"selector": {**selector, key: f"{selector[key]}-v2"}, "ports": ports}
        what = f"selector {key}={selector[key]}-v2"
    return Change("Service", meta["namespace"], meta["name"], desired=desired,
                  snapshot={"selector": selector, "ports": ports}, change=what)


SPEC = FaultSpec(FaultType.SERVICE_SELECTOR_MISMATCH, frozenset({TargetKind.SERVICE}), plan,
                 "payment's Service selects no pod → orders cannot be paid")
