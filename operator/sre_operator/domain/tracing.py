"""The pipeline as traces (issue 20): one trace per Incident (its id derived from the Incident's
uid, so the spans of one Incident meet in one trace across operator restarts), one span per phase it
went through, one per model call (GenAI semantic conventions), and the Incident's own span once it
finished. Reported after the fact with their times, as the telemetry is: the runner derives them
from the status patches it persists and the model calls it makes; `adapters/spans.py` exports them
over OTLP (to the shop's Jaeger). `NO_SPANS` (the default) records nothing."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

Attributes = Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class Ref:
    """The Incident a span is about."""
    uid: str
    namespace: str
    name: str


class Spans(Protocol):
    def phase(self, incident: Ref, phase: str, start: float, end: float, attributes: Attributes) -> None:
        """The Incident spent [start, end] (Unix seconds) in `phase`."""

    def model_call(self, incident: Ref, model: str, start: float, end: float, attributes: Attributes) -> None:
        """One call to the model for a plan, with its GenAI attributes."""

    def incident(self, incident: Ref, start: float, end: float, attributes: Attributes) -> None:
        """The Incident finished: its whole span, from its creation, parent of the others."""


class NoSpans:
    def phase(self, incident: Ref, phase: str, start: float, end: float, attributes: Attributes) -> None:
        pass

    def model_call(self, incident: Ref, model: str, start: float, end: float, attributes: Attributes) -> None:
        pass

    def incident(self, incident: Ref, start: float, end: float, attributes: Attributes) -> None:
        pass


NO_SPANS: Spans = NoSpans()
