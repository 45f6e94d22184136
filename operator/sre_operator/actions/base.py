"""What every action module is made of: its `ActionSpec` (what it targets, what it needs, how it is
vetted, prepared, undone and recognised once done), the `Prepared` change it hands to whoever
applies it, and the helpers several actions share. Pure: no module here reads or writes the cluster;
they compute from a `Snapshot` and return what to write."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..domain.models import Action
from ..domain.ports import Obj, PatchType
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType, TargetKind

Verb = Literal["patch", "delete", "create"]
REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class ActionRefused(ValueError):
    """An action outside the allowlist, the incident's namespace, the target's shape or what the
    cluster holds."""


@dataclass(frozen=True)
class Ref:
    """The object an applied action acted on (an action record's `target`)."""
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Prepared:
    """One write to make: `verb` on `kind` `namespace`/`name` with `body` (a JSON patch's operations,
    a merge patch, an object to create, or None for a delete), and the record that undoes it
    (`undo`; empty: nothing to undo)."""
    kind: str
    namespace: str
    name: str
    verb: Verb
    patch_type: PatchType | None
    body: Any
    undo: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    action: ActionType | None = None  # the action type it comes from (an undo's: the undone one's)


Vet = Callable[[Action, Snapshot], None]
Prepare = Callable[[Action, Snapshot], Prepared]
Undo = Callable[[Ref, dict[str, Any]], "Prepared | None"]
TookEffect = Callable[[dict[str, Any], "Obj | None"], bool]


def revision_of(obj: Obj) -> int:
    """The rollout revision of a Deployment or ReplicaSet (0 when it has none yet)."""
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


def body_of(intent: dict[str, Any]) -> Any:
    """An intent's body (records written before it was called `body` hold it as `patch`)."""
    return intent["body"] if "body" in intent else intent.get("patch")


def shows(intent: dict[str, Any], current: Obj | None) -> bool:
    """Whether the object already shows a recorded intent (the operator was killed between
    applying an action and recording it): then it must not be applied a second time. A deletion
    is never taken as done (a pod is deleted by name; its controller replaced it anyway); a
    creation is done when the object exists."""
    verb = intent.get("verb")
    if verb == "delete":
        return False
    if current is None:
        return False
    if verb == "create":
        return True
    body = body_of(intent)
    if intent.get("patchType") == "json" or isinstance(body, list):  # replaced wholes
        return all(op["op"] == "replace" and _replaced(current, op["path"], op["value"]) for op in body)
    return contains(current, body)


def never(_intent: dict[str, Any], _current: Obj | None) -> bool:
    """For actions that cannot be recognised once done (a deletion): they are not done twice."""
    return False


def _replaced(current: Obj, path: str, value: object) -> bool:
    obj: object = current
    for part in path.strip("/").split("/"):
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    if path == "/spec/template" and isinstance(obj, dict):
        obj = copy.deepcopy(obj)
        obj.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        # A template replaced whole is the one recorded, not one that merely holds it: a bad revision
        # that added a field (a nodeSelector, a toleration, an annotation) holds the good one too.
        return obj == value
    if path == "/spec/selector":
        return obj == value  # a selector with one key more selects other pods
    if path == "/spec/ports" and isinstance(obj, list) and isinstance(value, list) and len(obj) == len(value):
        # The API server fills in defaults (protocol, nodePort): the recorded ports are a part of each.
        return all(contains(o, v) for o, v in zip(obj, value, strict=True))
    return contains(obj, value)


def contains(obj: object, part: object) -> bool:
    """Every value of a merge patch is present in `obj` (None: the key is absent)."""
    if isinstance(part, dict):
        if not isinstance(obj, dict):
            return False
        return all((k not in obj) if v is None else (k in obj and contains(obj[k], v)) for k, v in part.items())
    return obj == part


def existing(action: Action, snap: Snapshot) -> Obj:
    """The target as the snapshot holds it: an object of the application (the snapshot holds
    nothing else), or ActionRefused."""
    obj = snap.get(action.target.kind, action.target.name)
    if obj is None:
        raise ActionRefused(f"{str(action.target.kind).lower()}/{action.target.name} is not an object of this "
                            f"application in {snap.namespace}")
    return obj


@dataclass(frozen=True)
class ActionSpec:
    """One allowlisted action type: everything the operator knows about it, in its own module.

    - `kinds`: what it may target; `required`: the fields of the `Action` it cannot do without;
    - `description`, `parameters`: its line of the planner's action catalogue (the LLM's prompt);
    - `vet(action, snap)`: raises ActionRefused when the cluster as read says it cannot or must not
      be done (the target's existence and ownership, revisions, bounds, records on file);
    - `prepare(action, snap)`: the write and its undo record, from the live object and the
      known-good record in the snapshot (called after `vet`);
    - `undo(target, record)`: the write that restores what the undo record holds (None: nothing);
    - `took_effect(intent, current)`: whether the object already shows the recorded intent."""
    type: ActionType
    kinds: tuple[TargetKind, ...]
    description: str
    vet: Vet
    prepare: Prepare
    undo: Undo
    parameters: str = ""
    required: tuple[str, ...] = ()
    took_effect: TookEffect = shows

    def catalogue_line(self) -> str:
        what = "/".join(self.kinds) + (f"; {self.parameters}" if self.parameters else "")
        return f"{self.type.value} ({what}): {self.description}"


def nothing_to_undo(_target: Ref, _record: dict[str, Any]) -> Prepared | None:
    return None
