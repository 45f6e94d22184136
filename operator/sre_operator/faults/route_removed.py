"""route-removed: one `location` block taken out of the gateway's NGINX config (default
`/api/products`); the Deployments mounting it are rolled. That path answers 404 from NGINX itself."""
from __future__ import annotations

import re
from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, Params
from .changes import config_change

DEFAULT_ROUTE = "/api/products"


def without_route(config: str, route: str) -> str:
    """The same NGINX config without the `location` block that serves `route`."""
    # A prefix (`^~`) or exact (`=`) location; its body may hold one level of blocks (`limit_except`).
    pattern = re.compile(r"^[ \t]*location\s+(?:(?:\^~|=)\s+)?" + re.escape(route)
                         + r"\s*\{(?:[^{}]|\{[^{}]*\})*\}[ \t]*\n?", re.MULTILINE)
    out, n = pattern.subn("", config)
    if n == 0:
        raise FaultError(f"the gateway config has no `location {route}` block to remove")
    return out


def plan(obj: Obj, params: Params, deployments: Sequence[Obj]) -> Change:
    route = str(params.get("route") or DEFAULT_ROUTE)

    def edit(text: str) -> tuple[str, str]:
        return without_route(text, route), f"location {route} removed"
    return config_change(obj, deployments, edit)


SPEC = FaultSpec(FaultType.ROUTE_REMOVED, frozenset({TargetKind.CONFIG_MAP}), plan,
                 "the gateway loses its /api/products route → 404 from NGINX itself")
