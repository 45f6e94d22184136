"""delete-pod: one pod of the application deleted (its controller makes a new one). Nothing to undo,
and never taken as done twice: a pod is deleted by name and its replacement has another."""
from __future__ import annotations

from ..domain.models import Action
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import ActionSpec, Prepared, existing, never, nothing_to_undo


def vet(action: Action, snap: Snapshot) -> None:
    existing(action, snap)


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    return Prepared("Pod", snap.namespace, name, "delete", None, None, summary=f"delete pod {name}",
                    action=ActionType.DELETE_POD)


SPEC = ActionSpec(ActionType.DELETE_POD, (TargetKind.POD,), "delete one pod; its Deployment starts a new one",
                  vet=vet, prepare=prepare, undo=nothing_to_undo, took_effect=never)
