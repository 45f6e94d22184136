"""FaultScenario types: one module per `FaultType` in this package, each with a module-level `SPEC`
(`base.FaultSpec`: the kinds it targets and a pure `plan` from one object to the `Change` it makes),
found here by walking the package, so `FAULTS` maps every type to its spec without a list to keep.

`plan(scenario, targets, deployments)` says which objects a scenario changes: for each, the `desired`
state of the fields it touches and the `snapshot` of their original values, in the same shape, so
injecting writes `desired` and reverting writes `snapshot` through the same `patch_for`
(`injector.py` does both against the `Cluster` port; `reconcile.py` is what the handlers call).
Reverting twice is harmless: the second time writes what is already there."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain import clock
from ..domain.ports import Obj
from ..domain.registry import discover
from ..domain.vocabulary import FaultType
from .bad_env import BAD_ENV_DEFAULTS
from .bad_gateway_config import broken_gateway_config
from .base import Change, FaultError, FaultSpec
from .changes import DEAD_PORT, RESTARTED_AT, mounting_deployments, patch_for, pick, restart_patch
from .memory_leak import DEFAULT_LEAK_KB
from .real_overload import DEFAULT_OVERLOAD_RPS
from .route_removed import DEFAULT_ROUTE, without_route

# The package's modules that are not a fault type (the machinery every type shares).
SUPPORT_MODULES = frozenset({"base", "changes", "conditions", "injector", "reconcile"})

__all__ = ["BAD_ENV_DEFAULTS", "DEAD_PORT", "DEFAULT_LEAK_KB", "DEFAULT_OVERLOAD_RPS", "DEFAULT_ROUTE",
           "FAULTS", "RESTARTED_AT", "Change", "FaultError", "FaultSpec", "broken_gateway_config",
           "mounting_deployments", "parse_duration", "patch_for", "pick", "plan", "restart_patch", "spec_of",
           "without_route"]




FAULTS: dict[FaultType, FaultSpec] = discover(__name__, __path__, FaultSpec, FaultType, SUPPORT_MODULES)


def spec_of(ftype: str) -> FaultSpec:
    """The spec of a fault type named in a scenario (FaultError when there is none)."""
    try:
        return FAULTS[FaultType(ftype)]
    except (ValueError, KeyError):
        known = ", ".join(FAULTS)
        raise FaultError(f"fault type {ftype!r} is not implemented (implemented: {known})") from None


def parse_duration(text: str) -> float:
    """`spec.duration` in seconds (Go-style: `90s`, `5m`, `1h30m`, `250ms`); FaultError when invalid."""
    try:
        return clock.parse_duration(text)
    except ValueError as exc:
        raise FaultError(str(exc)) from None


def plan(scenario: Obj, targets: Sequence[Obj], deployments: Sequence[Obj]) -> list[Change]:
    """The changes a scenario makes to its (already selected) target objects."""
    spec = spec_of(scenario["spec"]["type"])
    if not targets:
        raise FaultError("no object matches the target")
    params = scenario["spec"].get("parameters") or {}
    return [spec.change_for(obj, params, deployments) for obj in targets]
