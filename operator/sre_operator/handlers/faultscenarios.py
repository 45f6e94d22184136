"""FaultScenario handlers: inject on create, revert when `spec.duration` is over (a timer, so it
survives operator restarts) and on delete (kopf's finalizer)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import kopf

from .. import faults
from ..faults import injector
from . import login  # noqa: F401 - registers the login handler
from ..adapters.kube import GROUP, VERSION, Kube
from ..domain.ports import ClusterError
from ..settings import Settings

SETTINGS = Settings()
PLURAL = injector.PLURAL


def _kube() -> Kube:
    return Kube()


def _body(body: Any) -> dict:
    return {"metadata": dict(body["metadata"]), "spec": dict(body["spec"]), "status": dict(body.get("status") or {})}


def _run(fn, *args: Any) -> dict:  # noqa: ANN001
    try:
        return fn(*args)
    except ClusterError as exc:
        if exc.transient:
            raise kopf.TemporaryError(f"API server: {exc.status} {exc.reason}", delay=3) from exc
        raise kopf.PermanentError(f"API server refused: {exc.status} {exc.reason}") from exc


@kopf.on.create(GROUP, VERSION, PLURAL)
def inject(body: Any, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    scenario = _body(body)
    try:
        status = _run(injector.inject, _kube(), scenario, SETTINGS.allowed_target_namespaces())
    except faults.FaultError as exc:
        patch.status.update(phase="Failed", reason="InvalidScenario", message=str(exc),
                            conditions=[injector.condition("Injected", False, "InvalidScenario", str(exc))])
        kopf.warn(body, reason="InvalidScenario", message=str(exc))
        return
    if status:
        patch.status.update(status)
        kopf.info(body, reason="Injected", message=status["message"][:1000])
        logger.info("injected %s: %s", scenario["spec"]["type"], status["message"])


def _due(status: dict) -> bool:
    at = status.get("revertAt")
    if not at:
        return False
    when = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) >= when


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.revert_check_seconds,
            when=lambda status, **_: status.get("phase") == "Injected")
def revert_when_due(body: Any, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    scenario = _body(body)
    if not _due(scenario["status"]):
        return
    status = _run(injector.revert, _kube(), scenario, "DurationElapsed")
    if status:
        patch.status.update(status)
        kopf.info(body, reason="Reverted", message="spec.duration elapsed: reverted from the snapshot")
        logger.info("reverted %s after its duration", scenario["metadata"]["name"])


# The finalizer is held only while the fault may be in place: a reverted or failed scenario never
# blocks its own (or its namespace's) deletion, even with the operator gone.
@kopf.on.delete(GROUP, VERSION, PLURAL,
                when=lambda status, **_: status.get("phase") in (None, "Pending", "Injected", "Reverting"))
def revert_on_delete(body: Any, logger: Any, **_: Any) -> None:
    scenario = _body(body)
    status = _run(injector.revert, _kube(), scenario, "Deleted")
    if status:
        logger.info("reverted %s on delete", scenario["metadata"]["name"])
