"""patch-configmap: new values for keys of a ConfigMap of the application. Without data, the values
last seen healthy (the known-good record). Whoever wrote a config (a model, or the record), it keeps
to the ConfigMap's keys and passes `configcheck` (NGINX configs: upstreams are Services of the
application, `nginx -t`) before it is written. Undo: the previous values (a key it added is removed)."""
from __future__ import annotations

from typing import Any

from ..domain.models import Action
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind
from . import configcheck
from .base import ActionRefused, ActionSpec, Prepared, Ref, existing


def new_data(action: Action, snap: Snapshot) -> dict[str, str]:
    """The values to write: the action's, else the known-good record's."""
    if action.data:
        return dict(action.data)
    good = snap.known_good_config(action.target.name)
    if not good:
        raise ActionRefused(f"no known-good version of configmap/{action.target.name}")
    return good


def vet(action: Action, snap: Snapshot) -> None:
    name = action.target.name
    current = dict(existing(action, snap).get("data") or {})
    known = snap.known_good_config(name)
    services = {s["metadata"]["name"]: {int(p["port"]) for p in s["spec"].get("ports") or []}
                for s in snap.of("Service")}
    for key, value in new_data(action, snap).items():
        if key not in current and key not in known:  # a key it has, or had when healthy
            raise ActionRefused(f"configmap/{name} has no key {key!r}")
        if configcheck.is_nginx_config(key, current.get(key) or known.get(key) or value):
            result = configcheck.check_nginx_config(value, snap.namespace, services)
            if not result.ok:
                raise ActionRefused(f"the new {key} is not a valid config: {result.message()}")


def prepare(action: Action, snap: Snapshot) -> Prepared:
    name = action.target.name
    current = existing(action, snap).get("data") or {}
    data = new_data(action, snap)
    return Prepared("ConfigMap", snap.namespace, name, "patch", "merge", {"data": data},
                    undo={"data": {k: current.get(k) for k in data}},
                    summary=f"patch configmap/{name} keys {sorted(data)}"
                            + ("" if action.data else " (the known-good version)"),
                    action=ActionType.PATCH_CONFIGMAP)


def undo(target: Ref, record: dict[str, Any]) -> Prepared | None:
    if "data" not in record:
        return None
    # A None value removes a key the action added.
    return Prepared(target.kind, target.namespace, target.name, "patch", "merge", {"data": record["data"]},
                    summary=f"put back the values configmap/{target.name} had", action=ActionType.PATCH_CONFIGMAP)


SPEC = ActionSpec(ActionType.PATCH_CONFIGMAP, (TargetKind.CONFIG_MAP,),
                  "write new values of the ConfigMap's keys; without data, put back the version last seen healthy",
                  vet=vet, prepare=prepare, undo=undo,
                  parameters="data: the complete new value of each key you change")
