"""What one tick of the pipeline decides: a `Step`, the writes to make in the order to make them.

- `Status`: a JSON merge patch of the Incident's status (persisted before the next op runs);
  `phase`, when set, moves the Incident (its timeline entry, Event and conditions are added by
  `pipeline.advance`, the one place that does it);
- `Write`: a patch or delete of one object, always in the Incident's own namespace (an op carries
  no namespace, so none can name another);
- `Event`: a Kubernetes Event about the Incident;
- `Question`: a question for the model, asked in the background (the Incident does not wait for
  it); its answer comes back in a later tick's `Tick.late`.

A stage never performs any of these; `runner.execute` does, through the `Cluster` port (a
`Question` is handed to the runner's background questions by `runner.tick`, before the step's
other ops). When a `Write` is refused, the runner stops the step there and persists
`on_refused(reason)` instead."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..domain.models import Evidence
from ..domain.ports import PatchType
from ..domain.vocabulary import ModelStage, Phase


@dataclass(frozen=True)
class Status:
    fields: dict[str, Any] = field(default_factory=dict)
    phase: Phase | None = None
    message: str = ""
    reason: str = ""  # why the phase changed (a condition's reason); default: the phase


@dataclass(frozen=True)
class Write:
    verb: Literal["patch", "delete", "create"]
    kind: str
    name: str
    patch_type: PatchType = "merge"
    body: Any = None


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Question:
    """Ask the model for `stage` from this evidence, without waiting for the answer (one per
    Incident at a time: asked again while it is held, it is not asked twice)."""
    stage: ModelStage
    evidence: Evidence


Op = Status | Write | Event | Question


@dataclass(frozen=True)
class Step:
    ops: tuple[Op, ...] = ()
    again: bool = False  # more to do in this phase at once: tick again without pausing
    on_refused: Callable[[str], Step] | None = None  # the step instead, when a Write is refused


NOTHING = Step()


def merged(document: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`document` after a JSON merge patch (RFC 7386): what the API server makes of a status patch."""
    out = dict(document)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
