"""rollback: a Deployment's pod template replaced whole by the one of an earlier revision (a
ReplicaSet it still owns), as `kubectl rollout undo --to-revision` does. Undo: the template it
replaced."""
from __future__ import annotations

import copy
from typing import Any

from ..domain.models import Action
from ..domain.ports import Obj
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import ActionRefused, ActionSpec, Prepared, Ref, existing, revision_of


def _revision(action: Action, snap: Snapshot) -> Obj:
    """The ReplicaSet of the revision to go back to."""
    name = action.target.name
    rs = next((r for r in snap.replica_sets_of(name) if revision_of(r) == action.revision), None)
    if rs is None:
        raise ActionRefused(f"deployment/{name} has no revision {action.revision}")
    return rs


def vet(action: Action, snap: Snapshot) -> None:
    current = existing(action, snap)
    _revision(action, snap)
    if action.revision == revision_of(current):
        raise ActionRefused(f"deployment/{action.target.name} already runs revision {action.revision}")


def _template_patch(template: Obj) -> list[dict[str, Any]]:
    # A JSON patch replaces the template whole: a strategic merge would keep env vars the bad
    # revision added.
    return [{"op": "replace", "path": "/spec/template", "value": template}]


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    current = existing(action, snap)
    template = copy.deepcopy(_revision(action, snap)["spec"]["template"])
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    return Prepared("Deployment", snap.namespace, name, "patch", "json", _template_patch(template),
                    undo={"template": current["spec"]["template"]},
                    summary=f"roll back deployment/{name} to revision {action.revision}", action=ActionType.ROLLBACK)


def undo(target: Ref, record: dict[str, Any]) -> Prepared | None:
    if "template" not in record:
        return None
    return Prepared(target.kind, target.namespace, target.name, "patch", "json", _template_patch(record["template"]),
                    summary=f"put back the template deployment/{target.name} had", action=ActionType.ROLLBACK)


SPEC = ActionSpec(ActionType.ROLLBACK, (TargetKind.DEPLOYMENT,),
                  "put back the pod template of an earlier revision of the Deployment",
                  vet=vet, prepare=prepare, undo=undo,
                  parameters="revision: a previous revision listed in the evidence", required=("revision",))
