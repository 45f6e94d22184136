"""The typed allowlist of mitigation actions, one module per action type, each with a module-level
`SPEC` (`base.ActionSpec`): what it may target, what it needs, how it is vetted against a
`Snapshot`, prepared (the write and the record that undoes it), undone and recognised once done.
`ACTIONS` is built here by discovering this package's modules, so adding an action is one member of
`domain.vocabulary.ActionType`, one module and its test. Pure: whoever applies a `Prepared` does the
I/O.

Each module says in its docstring what its action does and how it is undone.
"""
from __future__ import annotations

from typing import Any

from ..domain.models import Action
from ..domain.ports import Obj
from ..domain.registry import discover
from ..domain.snapshot import Snapshot
from ..domain.vocabulary import ActionType
from .base import RESTARTED_AT, REVISION, ActionRefused, ActionSpec, Prepared, Ref, revision_of, shows

__all__ = [
    "ACTIONS",
    "RESTARTED_AT",
    "REVISION",
    "ActionRefused",
    "ActionSpec",
    "Prepared",
    "catalogue",
    "check",
    "intent_of",
    "prepare",
    "revision_of",
    "took_effect",
    "undo_of",
    "vet",
]

HELPERS = frozenset({"base", "configcheck"})  # modules of this package that are not action types


ACTIONS: dict[ActionType, ActionSpec] = discover(__name__, __path__, ActionSpec, ActionType, HELPERS)


def spec_of(action_type: str) -> ActionSpec:
    try:
        return ACTIONS[ActionType(action_type)]
    except (ValueError, KeyError):
        raise ActionRefused(f"action {action_type!r} is not in the allowlist") from None


def catalogue() -> str:
    """The allowlist as the planner's prompt lists it: one line per action type."""
    return "\n".join(f"  - {s.catalogue_line()}" for s in ACTIONS.values())


def check(action: Action, namespace: str) -> None:
    """The action's shape: an allowlisted type, on a kind it acts on, in the incident's namespace,
    with the fields it needs."""
    spec = spec_of(action.type)
    if action.target.kind not in spec.kinds:
        raise ActionRefused(f"{spec.type.value} acts on {'/'.join(sorted(spec.kinds))}, not {action.target.kind}")
    if action.target.namespace not in (None, namespace):
        raise ActionRefused(f"target namespace {action.target.namespace!r} is outside the incident's ({namespace!r})")
    for name in spec.required:
        if getattr(action, name) is None:
            raise ActionRefused(f"{spec.type.value} needs {name}")


def vet(action: Action, snap: Snapshot) -> None:
    """`check`, then whether the cluster as read allows it (ActionRefused with the reason)."""
    check(action, snap.namespace)
    spec_of(action.type).vet(action, snap)


def prepare(action: Action, snap: Snapshot) -> Prepared:
    """The write that does `action` against the snapshot's objects, with its undo record. Vetted
    first, whoever planned it."""
    vet(action, snap)
    return spec_of(action.type).prepare(action, snap)


def undo_of(record: dict[str, Any]) -> Prepared | None:
    """The write that undoes an applied action, from its record ({type, target{kind, namespace,
    name}, undo}); None when there is nothing to undo."""
    target = record["target"]
    ref = Ref(target["kind"], target.get("namespace") or "", target["name"])
    return spec_of(record["type"]).undo(ref, dict(record.get("undo") or {}))


def intent_of(p: Prepared) -> dict[str, Any]:
    """What an action is about to do, as recorded before it is done (replayable after a restart)."""
    intent = {"action": p.action.value if p.action else None, "verb": p.verb, "patchType": p.patch_type,
              "body": p.body}
    return {k: v for k, v in intent.items() if v is not None}  # null is not stored: a create has no patch type


def took_effect(intent: dict[str, Any], current: Obj | None) -> bool:
    """Whether `current` (the target as it is now; None: absent) already shows the recorded intent,
    as the intent's action type judges it (records without one: by verb and patch)."""
    action = intent.get("action")
    if action in ACTIONS:
        return ACTIONS[ActionType(action)].took_effect(intent, current)
    return shows(intent, current)
