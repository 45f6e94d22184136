"""rollout-restart: a new `restartedAt` on a Deployment's pod template, as `kubectl rollout restart`
does. Nothing to undo: a restart changes no intent."""
from __future__ import annotations

from ..domain.clock import stamp
from ..domain.models import Action
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import RESTARTED_AT, ActionSpec, Prepared, existing, nothing_to_undo


def vet(action: Action, snap: Snapshot) -> None:
    existing(action, snap)


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    return Prepared("Deployment", snap.namespace, name, "patch", "merge",
                    {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp(snap.taken_at)}}}}},
                    summary=f"rollout restart deployment/{name}", action=ActionType.ROLLOUT_RESTART)


SPEC = ActionSpec(ActionType.ROLLOUT_RESTART, (TargetKind.DEPLOYMENT,),
                  "replace every pod of the Deployment with a fresh one (same template)",
                  vet=vet, prepare=prepare, undo=nothing_to_undo)
