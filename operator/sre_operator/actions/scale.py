"""scale: `spec.replicas = N` on a Deployment, between 1 and `MAX_REPLICAS`. Undo: the count it had."""
from __future__ import annotations

from typing import Any

from ..domain.models import Action
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import ActionRefused, ActionSpec, Prepared, Ref, existing

MAX_REPLICAS = 10


def vet(action: Action, snap: Snapshot) -> None:
    existing(action, snap)
    if not 1 <= (action.replicas or 0) <= MAX_REPLICAS:
        raise ActionRefused(f"scale to {action.replicas} replicas: allowed 1..{MAX_REPLICAS}")


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    before = int(existing(action, snap)["spec"].get("replicas", 1))
    return Prepared("Deployment", snap.namespace, name, "patch", "merge", {"spec": {"replicas": action.replicas}},
                    undo={"replicas": before}, summary=f"scale deployment/{name} {before} → {action.replicas}",
                    action=ActionType.SCALE)


def undo(target: Ref, record: dict[str, Any]) -> Prepared | None:
    if "replicas" not in record:
        return None
    return Prepared(target.kind, target.namespace, target.name, "patch", "merge",
                    {"spec": {"replicas": record["replicas"]}},
                    summary=f"scale deployment/{target.name} back to {record['replicas']}", action=ActionType.SCALE)


SPEC = ActionSpec(ActionType.SCALE, (TargetKind.DEPLOYMENT,), "set the Deployment's number of replicas",
                  vet=vet, prepare=prepare, undo=undo, parameters=f"replicas 1-{MAX_REPLICAS}",
                  required=("replicas",))
