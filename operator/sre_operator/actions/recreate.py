"""recreate: a Deployment, Service or ConfigMap of the application that was deleted, created again
from its last healthy copy (the known-good record's `_object.<Kind>.<name>`). Only while it is
absent. The copy is marked (`MARK`), so that the operator, resumed after a kill, takes as its own
only an object it created, never one that merely has the name. Undo: delete it again (the state the
incident found). Done: it exists with the mark."""
from __future__ import annotations

import copy
from typing import Any

from ..domain.models import Action
from ..domain.ports import Obj
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import ActionRefused, ActionSpec, Prepared, Ref

MARK = "sre.stratus.dev/recreated-from"


def _copy(action: Action, snap: Snapshot) -> Obj:
    kind, name = action.target.kind, action.target.name
    body = snap.known_good_object(kind, name)
    if body is None:
        raise ActionRefused(f"no healthy copy of {str(kind).lower()}/{name} on record")
    return body


def vet(action: Action, snap: Snapshot) -> None:
    kind, name = action.target.kind, action.target.name
    if snap.get(kind, name) is not None:
        raise ActionRefused(f"{str(kind).lower()}/{name} exists: there is nothing to recreate")
    _copy(action, snap)


def prepare(action: Action, snap: Snapshot) -> Prepared:
    kind, name = action.target.kind, action.target.name
    body = copy.deepcopy(_copy(action, snap))
    meta = body.setdefault("metadata", {})
    meta["namespace"] = snap.namespace
    meta.setdefault("annotations", {})[MARK] = "known-good"
    return Prepared(kind, snap.namespace, name, "create", None, body, undo={"recreated": True},
                    summary=f"recreate {str(kind).lower()}/{name} from its last healthy copy",
                    action=ActionType.RECREATE)


def undo(target: Ref, record: dict[str, Any]) -> Prepared | None:
    if not record.get("recreated"):
        return None
    return Prepared(target.kind, target.namespace, target.name, "delete", None, None,
                    summary=f"delete the recreated {target.kind.lower()}/{target.name}", action=ActionType.RECREATE)


def exists(_intent: dict[str, Any], current: Obj | None) -> bool:
    return current is not None and MARK in ((current.get("metadata") or {}).get("annotations") or {})


SPEC = ActionSpec(ActionType.RECREATE, (TargetKind.DEPLOYMENT, TargetKind.SERVICE, TargetKind.CONFIG_MAP),
                  "create a deleted object of the application again from its last healthy copy",
                  vet=vet, prepare=prepare, undo=undo, took_effect=exists)
