"""What every fault type is made of: a `FaultSpec` (its type, the kinds it may target, a pure
`plan` from one target object to the `Change` it makes), the `Change` itself, and `FaultError`.

A fault type's module (`faults/<type>.py`) holds only its `SPEC` and the pure functions behind it.
Injecting and reverting are the same for every type and live in `injector.py`: write the change's
`desired` fields, or its `snapshot` fields, through `changes.patch_for`, then roll the Deployments
named in `restart`. So a new fault type is a new module, one `FaultType` member, the CRD's enum and
its test."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind

# `desired` / `snapshot` fields of a change: {"container", "env"[, "strategy"][, "replicas"]} or
# {"replicas"} for a Deployment, {"key", "value"} for a ConfigMap, {"selector", "ports"} for a Service.
Fields = dict[str, Any]
Params = Mapping[str, Any]


class FaultError(ValueError):
    """The scenario cannot be injected as written (the message says why)."""


@dataclass
class Change:
    """What injecting changes on one object: `desired` is written to inject, `snapshot` (the same
    fields as they were) to revert; `restart` names the Deployments to roll after a ConfigMap change."""
    kind: str
    namespace: str
    name: str
    desired: Fields
    snapshot: Fields
    change: str  # in words, for status and events
    restart: list[str] = field(default_factory=list)


# plan(target, parameters, the target namespace's Deployments) -> the change; raises FaultError.
PlanFn = Callable[[Obj, Params, Sequence[Obj]], Change]


@dataclass(frozen=True)
class FaultSpec:
    type: FaultType
    kinds: frozenset[TargetKind]
    plan: PlanFn
    summary: str  # one line: what breaks and how it shows (the scenarios CLI's help)

    def change_for(self, obj: Obj, params: Params, deployments: Sequence[Obj]) -> Change:
        """The change on one selected object, after checking it is of a kind this type targets."""
        if obj.get("kind") not in self.kinds:
            raise FaultError(f"{self.type} targets a {self.kinds_text()} (target.kind: {self.kinds_text()})")
        return self.plan(obj, params, deployments)

    def kinds_text(self) -> str:
        return " or ".join(sorted(self.kinds))
