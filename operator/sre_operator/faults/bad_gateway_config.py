"""bad-gateway-config: the gateway's NGINX config with every upstream pointed at a port nothing
listens on (or `parameters.config`, a whole replacement); the Deployments mounting it are rolled so
NGINX loads it. The gateway answers 502."""
from __future__ import annotations

import re
from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, Params
from .changes import DEAD_PORT, config_change


def broken_gateway_config(config: str) -> str:
    """The same NGINX config with every upstream server pointed at a port nothing listens on."""
    broken, n = re.subn(r"(server\s+[A-Za-z0-9_.-]+):\d+", rf"\1:{DEAD_PORT}", config)
    if n == 0:
        raise FaultError("the gateway config has no upstream `server host:port` lines to break")
    return broken


def plan(obj: Obj, params: Params, deployments: Sequence[Obj]) -> Change:
    def edit(text: str) -> tuple[str, str]:
        if params.get("config"):
            return str(params["config"]), "replaced by parameters.config"
        return broken_gateway_config(text), "upstreams broken"
    return config_change(obj, deployments, edit)


SPEC = FaultSpec(FaultType.BAD_GATEWAY_CONFIG, frozenset({TargetKind.CONFIG_MAP}), plan,
                 "the gateway's NGINX config points at dead upstreams → 502")
