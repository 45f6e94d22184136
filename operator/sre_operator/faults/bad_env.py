"""bad-env: an environment value that breaks a call (`parameters.env`, by default order's payment
URL pointed at a port nothing serves)."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.ports import Obj
from ..domain.vocabulary import FaultType, TargetKind
from .base import Change, FaultError, FaultSpec, Params
from .changes import DEAD_PORT, env_change

# The default per target: the dependency URL whose breaking fails its calls.
BAD_ENV_DEFAULTS = {"order": {"SHOP_PAYMENT_URL": f"http://payment:{DEAD_PORT}"}}


def plan(obj: Obj, params: Params, _deployments: Sequence[Obj]) -> Change:
    values = {str(k): str(v) for k, v in (params.get("env") or {}).items()} or \
        BAD_ENV_DEFAULTS.get(obj["metadata"]["name"], {})
    if not values:
        raise FaultError("bad-env needs parameters.env (NAME: value) for this target")
    return env_change(obj, values, "wrong environment")


SPEC = FaultSpec(FaultType.BAD_ENV, frozenset({TargetKind.DEPLOYMENT}), plan,
                 "order's payment URL is wrong → every order fails")
