"""The typed allowlist of mitigation actions: each is checked (type, kind, namespace), turned into
the patch that does it, and paired with the record that undoes it. Pure: `kube.py` applies.

| action | does | undo |
|---|---|---|
| rollout-restart | new `restartedAt` on the pod template | nothing to undo (a restart is not a change of intent) |
| scale | `spec.replicas = N` | the previous replica count |
| rollback | the template of ReplicaSet revision R | the template it replaced |
| patch-configmap | data keys (validated first, e.g. `nginx -t`) | the previous values of those keys |
| delete-pod | deletes one pod (its controller makes a new one) | nothing to undo |
| restore-service | the Service's selector and ports as last seen healthy | the selector and ports it replaced |
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..domain.clock import stamp
from ..domain.models import Action

ALLOWED: dict[str, set[str]] = {"rollout-restart": {"Deployment"}, "scale": {"Deployment"},
                                "rollback": {"Deployment"}, "patch-configmap": {"ConfigMap"},
                                "delete-pod": {"Pod"}, "restore-service": {"Service"}}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


def revision_of(obj: dict) -> int:
    """The rollout revision of a Deployment or ReplicaSet (0 when it has none yet)."""
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


class ActionRefused(ValueError):
    """An action outside the allowlist, the incident's namespace or the target's shape."""


@dataclass
class Prepared:
    kind: str
    namespace: str
    name: str
    verb: str  # patch | delete
    patch: dict | list | None  # a merge patch (dict) or a JSON patch (list of operations)
    undo: dict = field(default_factory=dict)  # what `undo_patch` needs; empty: nothing to undo
    summary: str = ""


def check(action: Action, namespace: str) -> None:
    kinds = ALLOWED.get(action.type)
    if kinds is None:
        raise ActionRefused(f"action {action.type!r} is not in the allowlist")
    if action.target.kind not in kinds:
        raise ActionRefused(f"{action.type} acts on {'/'.join(sorted(kinds))}, not {action.target.kind}")
    if action.target.namespace not in (None, namespace):
        raise ActionRefused(f"target namespace {action.target.namespace!r} is outside the incident's ({namespace!r})")
    if action.type == "scale" and action.replicas is None:
        raise ActionRefused("scale needs replicas")
    if action.type == "rollback" and action.revision is None:
        raise ActionRefused("rollback needs a revision")
    if action.type == "patch-configmap" and not action.data:
        raise ActionRefused("patch-configmap needs data")


def prepare(action: Action, namespace: str, current: dict | None, replica_sets: list[dict] | None = None,
            known_good_service: dict | None = None) -> Prepared:
    """The patch for `action` against the target's current state, with its undo record
    (`known_good_service`: the {selector, ports} a restore-service puts back)."""
    check(action, namespace)
    name = action.target.name
    if action.type == "delete-pod":
        return Prepared("Pod", namespace, name, "delete", None, summary=f"delete pod {name}")
    if current is None:
        raise ActionRefused(f"{action.target.kind} {namespace}/{name} does not exist")
    if action.type == "rollout-restart":
        return Prepared("Deployment", namespace, name, "patch",
                        {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp()}}}}},
                        summary=f"rollout restart deployment/{name}")
    if action.type == "scale":
        before = int(current["spec"].get("replicas", 1))
        return Prepared("Deployment", namespace, name, "patch", {"spec": {"replicas": action.replicas}},
                        undo={"replicas": before}, summary=f"scale deployment/{name} {before} → {action.replicas}")
    if action.type == "restore-service":
        if not known_good_service:
            raise ActionRefused(f"no known-good version of service/{name}")
        spec = current["spec"]
        return Prepared("Service", namespace, name, "patch", service_patch(known_good_service),
                        undo={"service": {"selector": spec.get("selector") or {}, "ports": spec.get("ports") or []}},
                        summary=f"restore service/{name} selector and ports to the known-good version")
    if action.type == "rollback":
        rs = next((r for r in replica_sets or [] if revision_of(r) == action.revision), None)
        if rs is None:
            raise ActionRefused(f"deployment/{name} has no revision {action.revision}")
        template = copy.deepcopy(rs["spec"]["template"])
        (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        # A JSON patch replaces the template whole: a strategic merge would keep env vars the bad
        # revision added.
        return Prepared("Deployment", namespace, name, "patch",
                        [{"op": "replace", "path": "/spec/template", "value": template}],
                        undo={"template": current["spec"]["template"]},
                        summary=f"roll back deployment/{name} to revision {action.revision}")
    data = current.get("data") or {}
    previous = {k: data.get(k) for k in action.data or {}}
    return Prepared("ConfigMap", namespace, name, "patch", {"data": dict(action.data or {})},
                    undo={"data": previous}, summary=f"patch configmap/{name} keys {sorted(action.data or {})}")


def service_patch(spec: dict) -> list:
    """Replaces a Service's selector and ports whole (a merge would keep a wrong selector key)."""
    return [{"op": "replace", "path": "/spec/selector", "value": spec["selector"]},
            {"op": "replace", "path": "/spec/ports", "value": spec["ports"]}]


def undo_patch(kind: str, undo: dict) -> dict | list | None:
    """The patch that restores what an applied action's undo record holds (None: nothing to undo)."""
    if not undo:
        return None
    if kind == "Deployment" and "replicas" in undo:
        return {"spec": {"replicas": undo["replicas"]}}
    if kind == "Deployment" and "template" in undo:
        return [{"op": "replace", "path": "/spec/template", "value": undo["template"]}]
    if kind == "ConfigMap":
        return {"data": undo["data"]}  # a None value removes a key the action added
    if kind == "Service" and "service" in undo:
        return service_patch(undo["service"])
    raise ActionRefused(f"cannot undo {kind} with {sorted(undo)}")


def intent_of(p: Prepared) -> dict:
    """What an action is about to do, as recorded before it is done (replayable after a restart)."""
    return {"verb": p.verb, "patchType": "json" if isinstance(p.patch, list) else "merge", "patch": p.patch}


def took_effect(kind: str, intent: dict, current: dict | None) -> bool:
    """Whether the object already shows a recorded intent (the operator was killed between
    applying an action and recording it): then it must not be applied a second time."""
    if intent["verb"] == "delete":
        return False  # deleting a pod again is refused by its uid; its controller replaced it anyway
    if current is None:
        return False
    patch = intent["patch"]
    if intent["patchType"] == "json":  # replaced wholes: a pod template, a Service's selector and ports
        return all(op["op"] == "replace" and _replaced(current, op["path"], op["value"]) for op in patch)
    return _contains(current, patch)


def _replaced(current: dict, path: str, value: object) -> bool:
    obj: object = current
    for part in path.strip("/").split("/"):
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    if path == "/spec/template" and isinstance(obj, dict):
        obj = copy.deepcopy(obj)
        obj.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    if path == "/spec/selector":
        return obj == value  # a selector with one key more selects other pods
    if path == "/spec/ports" and isinstance(obj, list) and isinstance(value, list) and len(obj) == len(value):
        # The API server fills in defaults (protocol, nodePort): the recorded ports are a part of each.
        return all(_contains(o, v) for o, v in zip(obj, value))
    return _contains(obj, value)


def _contains(obj: object, part: object) -> bool:
    """Every value of a merge patch is present in `obj` (None: the key is absent)."""
    if isinstance(part, dict):
        if not isinstance(obj, dict):
            return False
        return all((k not in obj) if v is None else (k in obj and _contains(obj[k], v)) for k, v in part.items())
    return obj == part
