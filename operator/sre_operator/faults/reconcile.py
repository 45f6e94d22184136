"""What the FaultScenario handlers do, as functions of (cluster, scenario) that return the status
patch to write: `on_create` injects (an invalid scenario ends Failed with the reason, nothing
changed), `on_timer` reverts once `status.revertAt` is reached, `on_delete` reverts at once.
`handlers/faultscenarios.py` only registers them with kopf; the unit tier calls them with an
in-memory cluster and its clock."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..domain import clock
from ..domain.ports import Cluster, Obj
from ..domain.seal import PROCESS_KEY
from ..domain.vocabulary import FaultPhase
from . import injector
from .base import FaultError
from .injector import Clock


def scenario_of(body: Mapping[str, Any]) -> Obj:
    """A plain copy of the scenario kopf hands over (metadata, spec, status)."""
    return {"metadata": dict(body["metadata"]), "spec": dict(body["spec"]),
            "status": dict(body.get("status") or {})}


def on_create(cluster: Cluster, scenario: Obj, allowed_namespaces: Collection[str] = frozenset(),
              now: Clock = clock.now, key: bytes = PROCESS_KEY) -> Obj:
    try:
        return injector.inject(cluster, scenario, allowed_namespaces, now, key)
    except FaultError as exc:
        return injector.failed(scenario, str(exc), now())


def due(status: Mapping[str, Any], now: Clock = clock.now) -> bool:
    """An injected scenario's time is up at `revertAt`; one without a readable `revertAt` is due
    (a fault never stays in place for want of a date)."""
    if status.get("phase") != FaultPhase.INJECTED:
        return False
    at = clock.parse(status.get("revertAt"))
    return at is None or now() >= at


def on_timer(cluster: Cluster, scenario: Obj, now: Clock = clock.now, key: bytes = PROCESS_KEY,
             allowed_namespaces: Collection[str] = frozenset()) -> Obj:
    if not due(scenario.get("status") or {}, now):
        return {}
    return injector.revert(cluster, scenario, "DurationElapsed", now, key, allowed_namespaces)


def on_delete(cluster: Cluster, scenario: Obj, now: Clock = clock.now, key: bytes = PROCESS_KEY,
              allowed_namespaces: Collection[str] = frozenset()) -> Obj:
    return injector.revert(cluster, scenario, "Deleted", now, key, allowed_namespaces)
