"""FaultScenario handlers, registration only: inject on create, revert when `spec.duration` is over
(a timer, so it survives operator restarts) and on delete (kopf's finalizer). The work is in
`faults/reconcile.py`; API errors become kopf's retry (transient) or give-up (permanent)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from ..adapters.kube import GROUP, VERSION, Kube
from ..domain import clock
from ..domain.ports import ClusterError, Obj
from ..domain.vocabulary import FaultPhase
from ..faults import injector, reconcile
from ..settings import Settings
from . import login  # noqa: F401 - registers the login handler

SETTINGS = Settings()
PLURAL = "faultscenarios"


def _run(fn: Callable[..., Obj], *args: Any) -> Obj:
    try:
        return fn(Kube(), *args)
    except ClusterError as exc:
        if exc.transient:
            raise kopf.TemporaryError(f"API server: {exc.status} {exc.reason}", delay=3) from exc
        raise kopf.PermanentError(f"API server refused: {exc.status} {exc.reason}") from exc


@kopf.on.create(GROUP, VERSION, PLURAL)
def inject(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    scenario = reconcile.scenario_of(body)
    status = _run(reconcile.on_create, scenario, SETTINGS.allowed_target_namespaces(), clock.now, SETTINGS.seal_key())
    if not status:
        return
    patch.status.update(status)
    if status["phase"] == FaultPhase.FAILED:
        kopf.warn(body, reason=status["reason"], message=status["message"][:1000])
        return
    kopf.info(body, reason="Injected", message=status["message"][:1000])
    logger.info("injected %s: %s", scenario["spec"]["type"], status["message"])


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.revert_check_seconds,
            when=lambda status, **_: status.get("phase") == FaultPhase.INJECTED)
def revert_when_due(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    status = _run(reconcile.on_timer, reconcile.scenario_of(body), clock.now, SETTINGS.seal_key(),
                  SETTINGS.allowed_target_namespaces())
    if status:
        patch.status.update(status)
        if status["reason"] == injector.TAMPERED:
            kopf.warn(body, reason=injector.TAMPERED, message=status["message"][:1000])
            return
        kopf.info(body, reason="Reverted", message="spec.duration elapsed: reverted from the snapshot")
        logger.info("reverted %s after its duration", body["metadata"]["name"])


# The finalizer is held only while the fault may be in place: a reverted or failed scenario never
# blocks its own (or its namespace's) deletion, even with the operator gone.
@kopf.on.delete(GROUP, VERSION, PLURAL,
                when=lambda status, **_: status.get("phase") in (None, *injector.REVERTIBLE))
def revert_on_delete(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    if _run(reconcile.on_delete, reconcile.scenario_of(body), clock.now, SETTINGS.seal_key(),
            SETTINGS.allowed_target_namespaces()):
        logger.info("reverted %s on delete", body["metadata"]["name"])
