"""The operator's own figures ("watch the watcher"), as a narrow port: the runner and the detector
loop say what they did, `adapters/telemetry.py` turns it into Prometheus metrics on `/metrics`.
`NoTelemetry` (the default everywhere) records nothing, so a caller that wires none changes
nothing. Every method is called after the fact it reports was persisted (a status patch, a write),
never to read anything back."""
from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    def incident_opened(self, symptom: str, time_to_detect: float | None) -> None:
        """The pipeline took an Incident on (Detected → Triaging); `time_to_detect`: from the
        symptom's onset to the Incident's creation, in seconds."""

    def phase_changed(self, phase: str, time_to_mitigate: float | None = None) -> None:
        """An Incident moved to `phase`; `time_to_mitigate` (seconds from onset) when it is Resolved."""

    def action(self, action_type: str, outcome: str) -> None:
        """An action's record reached `outcome` (applied, failed, undone)."""

    def undo(self, outcome: str) -> None:
        """One undo-log entry: an applied action restored (undone), refused (failed) or with nothing to do (skipped)."""

    def llm_call(self, model: str, calls: int, prompt_tokens: int, completion_tokens: int, fallback: bool) -> None:
        """The model was asked for a plan; `fallback`: the rules' plan was used instead of its answer."""

    def detector_cycle(self, seconds: float, namespaces: int) -> None:
        """One detector cycle over `namespaces` namespaces took `seconds`."""

    def metrics_source(self, up: bool) -> None:
        """Whether the detector's last metrics reading answered (down: Kubernetes signals only,
        metric breaches held, nothing recorded as healthy)."""

    def leading(self, leader: bool) -> None:
        """Whether this process holds the leader Lease (acts) or stands by."""

    def in_phase(self, incident: str, phase: str | None, since: float | None = None) -> None:
        """The open Incident `incident` (namespace/name) is in `phase` since `since` (a Unix time);
        `phase` None: it is finished or gone (no longer counted)."""

    def notification(self, sink: str, outcome: str) -> None:
        """A notice reached a sink (`delivered`) or its retries were given up (`failed`)."""


class NoTelemetry:
    """Records nothing."""

    def incident_opened(self, symptom: str, time_to_detect: float | None) -> None:
        pass

    def phase_changed(self, phase: str, time_to_mitigate: float | None = None) -> None:
        pass

    def action(self, action_type: str, outcome: str) -> None:
        pass

    def undo(self, outcome: str) -> None:
        pass

    def llm_call(self, model: str, calls: int, prompt_tokens: int, completion_tokens: int, fallback: bool) -> None:
        pass

    def detector_cycle(self, seconds: float, namespaces: int) -> None:
        pass

    def metrics_source(self, up: bool) -> None:
        pass

    def leading(self, leader: bool) -> None:
        pass

    def in_phase(self, incident: str, phase: str | None, since: float | None = None) -> None:
        pass

    def notification(self, sink: str, outcome: str) -> None:
        pass


NO_TELEMETRY: Telemetry = NoTelemetry()
