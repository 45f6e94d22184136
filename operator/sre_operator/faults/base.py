"""What every fault type is made of: a `FaultSpec` (its type, the kinds it may target, a pure
`plan` from one target object to the `Change` it makes), the `Change` itself, and `FaultError`.

A fault type's module (`faults/<type>.py`) holds only its `SPEC` and the pure functions behind it.
Injecting and reverting are the same for every type and live in `injector.py`: write the change's
`desired` fields, or its `snapshot` fields, through `changes.patch_for`, then roll the Deployments
named in `restart`. A type with a runtime mode (`parameters.mode: runtime`) also has a `runtime`
plan, whose change carries a `RuntimeFault` instead of fields: the fault hook the injector calls on
every Ready pod of the Deployment through the API server's pod proxy (no new revision), and the
call that clears it. So a new fault type is a new module, one `FaultType` member, the CRD's enum and
its test."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.ports import Obj
from ..domain.vocabulary import FaultMode, FaultType, TargetKind

# `desired` / `snapshot` fields of a change: {"container", "env"[, "strategy"][, "replicas"]} or
# {"replicas"} for a Deployment, {"key", "value"} for a ConfigMap, {"selector", "ports"} for a Service.
Fields = dict[str, Any]
Params = Mapping[str, Any]


class FaultError(ValueError):
    """The scenario cannot be injected as written (the message says why)."""


@dataclass(frozen=True)
class HookCall:
    """One request to a shop process's fault hook (`services/shop/common/faults.py`)."""
    method: str  # POST or DELETE
    path: str  # /fault/crash, /fault/latency, ...
    body: Fields | None = None

    def as_dict(self) -> Fields:
        return {"method": self.method, "path": self.path, **({"body": self.body} if self.body is not None else {})}


@dataclass(frozen=True)
class RuntimeFault:
    """A fault flipped inside the running processes of a Deployment: `inject` is called on each of
    its Ready pods (matched by `selector`) on `port`, `revert` on those still there to clear it."""
    port: int
    selector: dict[str, str]
    inject: tuple[HookCall, ...]
    revert: tuple[HookCall, ...]


@dataclass
class Change:
    """What injecting changes on one object: `desired` is written to inject, `snapshot` (the same
    fields as they were) to revert; `restart` names the Deployments to roll after a ConfigMap change.
    A runtime change has no fields: its `runtime` hook calls are made instead of a patch."""
    kind: str
    namespace: str
    name: str
    desired: Fields
    snapshot: Fields
    change: str  # in words, for status and events
    restart: list[str] = field(default_factory=list)
    runtime: RuntimeFault | None = None


# plan(target, parameters, the target namespace's Deployments) -> the change; raises FaultError.
PlanFn = Callable[[Obj, Params, Sequence[Obj]], Change]


@dataclass(frozen=True)
class FaultSpec:
    type: FaultType
    kinds: frozenset[TargetKind]
    plan: PlanFn  # the default mode: a change to the objects (a new revision for a Deployment)
    summary: str  # one line: what breaks and how it shows (the scenarios CLI's help)
    runtime: PlanFn | None = None  # `parameters.mode: runtime`, for the types that have it

    def plans(self) -> dict[FaultMode, PlanFn]:
        """The type's plan per mode it supports."""
        return {mode: fn for mode, fn in ((FaultMode.ROLLOUT, self.plan), (FaultMode.RUNTIME, self.runtime))
                if fn is not None}

    def change_for(self, obj: Obj, params: Params, deployments: Sequence[Obj]) -> Change:
        """The change on one selected object, after checking it is of a kind this type targets and
        that the type has the mode asked for (`parameters.mode`, default rollout)."""
        if obj.get("kind") not in self.kinds:
            raise FaultError(f"{self.type} targets a {self.kinds_text()} (target.kind: {self.kinds_text()})")
        mode = str(params.get("mode") or FaultMode.ROLLOUT)
        plans = self.plans()
        if mode not in plans:
            raise FaultError(f"{self.type} has no mode {mode!r} (parameters.mode: "
                             f"{' or '.join(str(m) for m in plans)})")
        return plans[FaultMode(mode)](obj, params, deployments)

    def kinds_text(self) -> str:
        return " or ".join(sorted(self.kinds))
