"""A FaultScenario's conditions, as Chaos Mesh has them, derived by one pure function from its phase
and per-target records:

- `Selected`: the scenario's targets are chosen and their snapshot recorded (False with the reason
  when the scenario is invalid, before anything changed).
- `AllInjected`: every target carries the fault now.
- `AllRecovered`: the scenario ran its course and none of its changes is in place (every target
  reverted, or nothing was ever changed): `kubectl wait --for=condition=AllRecovered` waits for
  the end of a run, whatever its outcome.

`lastTransitionTime` is kept while a condition's status stays the same; every condition carries
the `observedGeneration` it was computed for."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..domain import clock
from ..domain.ports import Obj
from ..domain.vocabulary import FaultCondition, FaultPhase

MESSAGE_MAX = 4000


def _names(records: Sequence[Obj]) -> str:
    return ", ".join(f"{r['kind']}/{r['name']}" for r in records)


def _selected(phase: str, records: Sequence[Obj], reason: str, message: str) -> tuple[bool, str, str]:
    if records:
        return True, "Selected", f"{len(records)} selected: {_names(records)}"
    if phase == FaultPhase.FAILED:
        return False, reason, message
    return False, "NotSelected", "no target selected yet"


def _injected(phase: str, records: Sequence[Obj], reason: str, message: str) -> tuple[bool, str, str]:
    done = [r for r in records if r.get("phase") == FaultPhase.INJECTED]
    if records and len(done) == len(records):
        return True, "AllInjected", f"the fault is in place on {_names(records)}"
    if phase == FaultPhase.FAILED:
        return False, reason, message
    if phase == FaultPhase.REVERTED:
        return False, "Recovered", "the fault was reverted"
    return False, "NotInjected", f"{len(done)} of {len(records)} injected"


def _recovered(phase: str, records: Sequence[Obj], _reason: str, _message: str) -> tuple[bool, str, str]:
    in_place = [r for r in records if r.get("phase") in (FaultPhase.INJECTED, FaultPhase.PENDING)]
    finished = phase in (FaultPhase.REVERTED, FaultPhase.FAILED)
    if finished and not any(r.get("phase") == FaultPhase.INJECTED for r in records):
        reverted = [r for r in records if r.get("phase") == FaultPhase.REVERTED]
        if reverted:
            return True, "Recovered", f"reverted from the snapshot: {_names(reverted)}"
        return True, "NothingChanged", "no change was made"
    return False, "NotRecovered", f"not reverted yet: {_names(in_place)}" if in_place else "not reverted yet"


_RULES = ((FaultCondition.SELECTED, _selected), (FaultCondition.ALL_INJECTED, _injected),
          (FaultCondition.ALL_RECOVERED, _recovered))


def conditions(phase: str, records: Sequence[Obj], *, generation: int | None, previous: Sequence[Obj] = (),
               reason: str = "", message: str = "", at: dt.datetime | None = None) -> list[Obj]:
    """Selected, AllInjected and AllRecovered for a scenario in `phase` with these target records
    (`reason`/`message`: why it failed, when it did). `previous`: the conditions in status now."""
    before = {c.get("type"): c for c in previous}
    out = []
    for ctype, rule in _RULES:
        ok, why, words = rule(phase, records, reason, message)
        status = "True" if ok else "False"
        old = before.get(ctype)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        cond: Obj = {"type": str(ctype), "status": status, "reason": why, "message": words[:MESSAGE_MAX],
                     "lastTransitionTime": since or clock.stamp(at)}
        if generation is not None:
            cond["observedGeneration"] = generation
        out.append(cond)
    return out
