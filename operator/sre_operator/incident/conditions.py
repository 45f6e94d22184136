"""An Incident's conditions, derived from its phase by one pure function (as Flagger's
`MakeStatusConditions` does), so `kubectl wait --for=condition=Resolved incident/x` works:

| condition | True when the phase is |
|---|---|
| Resolved | Resolved |
| Mitigated | Validating or Resolved (the current attempt's actions are applied) |
| AwaitingApproval | AwaitingApproval |
| Escalated | Escalated |
| Valid | anything but Failed (the Incident can be handled as it is) |

A condition whose status did not change keeps its `lastTransitionTime`, reason and message; every
condition carries the `observedGeneration` it was computed for."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..domain.clock import stamp
from ..domain.vocabulary import Phase

TRUE_WHEN: dict[str, Callable[[Phase], bool]] = {
    "Resolved": lambda p: p == Phase.RESOLVED,
    "Mitigated": lambda p: p in (Phase.VALIDATING, Phase.RESOLVED),
    "AwaitingApproval": lambda p: p == Phase.AWAITING_APPROVAL,
    "Escalated": lambda p: p == Phase.ESCALATED,
    "Valid": lambda p: p != Phase.FAILED,
}


def conditions(phase: Phase, generation: int, at: dt.datetime, previous: list[dict[str, Any]] | None = None,
               reason: str = "", message: str = "") -> list[dict[str, Any]]:
    """The conditions for `phase`; `reason`/`message`: why the phase was entered (for the
    conditions that change now)."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for kind, holds in TRUE_WHEN.items():
        status = "True" if holds(phase) else "False"
        old = before.get(kind)
        if old is not None and old.get("status") == status:
            out.append({**old, "observedGeneration": generation})
        else:
            out.append({"type": kind, "status": status, "reason": reason or str(phase),
                        "message": message[:32768], "lastTransitionTime": stamp(at),
                        "observedGeneration": generation})
    return out
