"""restore-service: a Service's selector and ports put back as they were last seen healthy (the
known-good record). Undo: the selector and ports it replaced."""
from __future__ import annotations

from typing import Any

from ..domain.models import Action
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from .base import ActionRefused, ActionSpec, Prepared, Ref, existing


def service_patch(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Replaces a Service's selector and ports whole (a merge would keep a wrong selector key)."""
    return [{"op": "replace", "path": "/spec/selector", "value": spec["selector"]},
            {"op": "replace", "path": "/spec/ports", "value": spec["ports"]}]


def _known_good(action: Action, snap: Snapshot) -> dict[str, Any]:
    good = snap.known_good_service(action.target.name)
    if not good:
        raise ActionRefused(f"no known-good version of service/{action.target.name}")
    return good


def vet(action: Action, snap: Snapshot) -> None:
    existing(action, snap)
    _known_good(action, snap)


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    spec = existing(action, snap)["spec"]
    return Prepared("Service", snap.namespace, name, "patch", "json", service_patch(_known_good(action, snap)),
                    undo={"service": {"selector": spec.get("selector") or {}, "ports": spec.get("ports") or []}},
                    summary=f"restore service/{name} selector and ports to the known-good version",
                    action=ActionType.RESTORE_SERVICE)


def undo(target: Ref, record: dict[str, Any]) -> Prepared | None:
    if "service" not in record:
        return None
    return Prepared(target.kind, target.namespace, target.name, "patch", "json", service_patch(record["service"]),
                    summary=f"put back the selector and ports service/{target.name} had",
                    action=ActionType.RESTORE_SERVICE)


SPEC = ActionSpec(ActionType.RESTORE_SERVICE, (TargetKind.SERVICE,),
                  "put back the Service's selector and ports as last seen healthy",
                  vet=vet, prepare=prepare, undo=undo)
