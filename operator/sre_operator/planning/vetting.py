"""Checks a plan from an untrusted author (the LLM) before anything is done with it, against one
reading of the namespace (`Snapshot`):

- every action passes its own vetting in the action registry (`sre_operator.actions`): in the
  allowlist, on the kind it acts on, in the incident's namespace, with the fields it needs, on an
  object of the application that exists, and whatever its type checks (revisions, bounds, records
  on file, config keys and `configcheck`);
- the plan is not one already tried and undone.
"""
from __future__ import annotations

from .. import actions as acts
from ..domain.models import Action, MitigationPlan
from ..domain.snapshot import Snapshot


def key_of(action: Action) -> str:
    """How an action is named among the tried ones (`type:Kind/name`)."""
    return f"{action.type}:{action.target.kind}/{action.target.name}"


def vet(plan: MitigationPlan, snap: Snapshot, tried: set[str]) -> None:
    """Raises ActionRefused with the first reason the plan cannot be carried out as it is."""
    for action in plan.actions:
        acts.vet(action, snap)
    keys = {key_of(a) for a in plan.actions}
    if keys and keys <= tried:
        raise acts.ActionRefused("the plan repeats actions already tried and undone: " + ", ".join(sorted(keys)))
