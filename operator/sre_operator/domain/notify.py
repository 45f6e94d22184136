"""Telling a person (issue 20): when an Incident needs one (AwaitingApproval, Escalated) or is over
(Resolved), a `Notice` goes to the configured sinks through the `Notifier` port
(`adapters/notify.py`: a JSON webhook and a Slack-compatible incoming webhook). Which notice is due
and its record in `status.notified` are decided in `incident/notices.py`; this module only names
what travels, so the domain stays free of HTTP."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Notice:
    """One message about one transition. `key` is its idempotency key (the Incident's uid, the
    phase and, for an approval, the attempt): a receiver that sees it twice may drop the second."""
    key: str
    phase: str
    namespace: str
    name: str
    service: str
    summary: str
    message: str
    diagnosis: str
    link: str
    at: str

    def document(self) -> dict[str, Any]:
        return asdict(self)


class Notifier(Protocol):
    def notify(self, notice: Notice, done: Callable[[str], None]) -> None:
        """Hands `notice` over without waiting for any receiver and never raises; calls `done` once,
        later and from another thread, with the outcome: "delivered" (every sink took it) or
        "failed: <sinks>" (retries given up). A notice whose key is in flight, or was finished by
        this process, is ignored."""


@dataclass(frozen=True)
class Sink:
    """Where notices go: `webhook` (the notice as a JSON document) or `slack` (a Slack-compatible
    incoming webhook: `{"text": ...}`). The URL is a secret (it carries the token)."""
    kind: str
    url: str

    @property
    def name(self) -> str:
        return self.kind
