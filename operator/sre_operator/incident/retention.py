"""Finished Incidents are kept `finished_ttl_seconds` after they finished, then deleted (issue 20):
their record stays in the Events they emitted and in the operator's metrics. Deciding is pure
(`expired`); `expire` deletes through the `Cluster` port. When an Incident finished is read from
its own status (`resolvedAt`, else the timeline entry that moved it into its final phase); one whose
end cannot be read is kept, as is one with a notice still to tell: missing data never deletes."""
from __future__ import annotations

import datetime as dt

from ..domain.clock import parse
from ..domain.ports import Cluster, ClusterError, Obj
from ..domain.vocabulary import TERMINAL
from . import notices


def finished_at(status: dict[str, object]) -> dt.datetime | None:
    phase = status.get("phase")
    if phase not in TERMINAL:
        return None
    resolved = status.get("resolvedAt")
    if phase == "Resolved" and isinstance(resolved, str) and parse(resolved) is not None:
        return parse(resolved)
    timeline = status.get("timeline")
    if isinstance(timeline, list):
        for entry in reversed(timeline):
            if isinstance(entry, dict) and entry.get("phase") == phase and isinstance(entry.get("at"), str):
                return parse(entry["at"])
    return None


def expired(incident: Obj, now: dt.datetime, ttl_seconds: float, telling: bool) -> bool:
    """Whether the Incident is past its TTL (0: kept for ever); `telling`: a notifier is configured,
    so a notice not yet told keeps it."""
    status = incident.get("status")
    if ttl_seconds <= 0 or not isinstance(status, dict):
        return False
    end = finished_at(status)
    if end is None or (telling and notices.pending(status)):
        return False
    return (now - end).total_seconds() >= ttl_seconds


def expire(cluster: Cluster, incident: Obj, now: dt.datetime, ttl_seconds: float, telling: bool) -> bool:
    """Deletes the Incident when it is past its TTL; True when it did (or it was gone already)."""
    if not expired(incident, now, ttl_seconds, telling):
        return False
    meta = incident["metadata"]
    try:
        cluster.delete("Incident", meta["namespace"], meta["name"])
    except ClusterError as exc:
        if exc.status != 404:
            raise
    return True
