"""Which notice an Incident is due (pure): one per transition into AwaitingApproval (per attempt),
Escalated or Resolved, unless `status.notified` already records it. The record is written once the
sinks took the notice or were given up on, so a notice survives an operator restart (the next
leader sends what the last one had not finished) and is never sent twice by one that had.
Everything read here is the Incident's own, untrusted: odd values are cut short, never trusted."""
from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from ..domain.clock import stamp
from ..domain.notify import Notice
from ..domain.ports import Obj
from ..domain.vocabulary import Phase

NOTIFY_PHASES = frozenset({Phase.AWAITING_APPROVAL, Phase.ESCALATED, Phase.RESOLVED})


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def key_of(status: dict[str, Any]) -> str | None:
    """The record's key in `status.notified` for the phase the Incident is in (None: nothing to
    tell). An approval is per attempt: attempt 2 waiting is news after attempt 1 was."""
    phase = status.get("phase")
    if phase not in NOTIFY_PHASES:
        return None
    if phase == Phase.AWAITING_APPROVAL:
        attempts = status.get("attempts")
        return f"{phase}-attempt-{(attempts if isinstance(attempts, int) and attempts >= 0 else 0) + 1}"
    return str(phase)


def notified(status: dict[str, Any]) -> dict[str, Any]:
    record = status.get("notified")
    return record if isinstance(record, dict) else {}


def pending(status: dict[str, Any] | None) -> bool:
    """Whether the Incident's current phase is one to tell and not yet told."""
    status = status or {}
    key = key_of(status)
    return key is not None and key not in notified(status)


def link(dashboard_url: str, namespace: str, name: str) -> str:
    if not dashboard_url:
        return ""
    return f"{dashboard_url.rstrip('/')}/?namespace={quote(namespace)}&incident={quote(name)}"


def due(incident: Obj, dashboard_url: str) -> Notice | None:
    """The notice the Incident is due now, or None."""
    status = incident.get("status") or {}
    key = key_of(status) if isinstance(status, dict) else None
    if key is None or key in notified(status):
        return None
    meta, spec = incident.get("metadata") or {}, incident.get("spec") or {}
    spec = spec if isinstance(spec, dict) else {}
    namespace, name = _text(meta.get("namespace"), 63), _text(meta.get("name"), 253)
    diagnosis = status.get("diagnosis")
    timeline = status.get("timeline") or [{}]
    last = timeline[-1] if isinstance(timeline, list) and isinstance(timeline[-1], dict) else {}
    return Notice(key=f"{_text(meta.get('uid'), 64) or namespace + '/' + name}/{key}", phase=str(status["phase"]),
                  namespace=namespace, name=name, service=_text(spec.get("service"), 63),
                  summary=_text(spec.get("summary"), 1024) or f"{_text(spec.get('symptom'), 64)} on "
                                                             f"{_text(spec.get('service'), 63)}",
                  message=_text(status.get("message"), 2048),
                  diagnosis=_text(diagnosis.get("rootCause"), 1024) if isinstance(diagnosis, dict) else "",
                  link=link(dashboard_url, namespace, name), at=_text(last.get("at"), 64))


def record(status_key: str, outcome: str, now: dt.datetime) -> dict[str, Any]:
    """The status patch that records a notice's outcome under its key (`key_of`)."""
    return {"notified": {status_key: {"at": stamp(now), "outcome": outcome[:256]}}}
