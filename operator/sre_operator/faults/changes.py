"""Pure helpers the fault types share: Chaos Mesh's selection modes, an environment change on a
Deployment, a ConfigMap config change that rolls the Deployments mounting it, and the patches that
write a change's `desired` or `snapshot` fields (`patch_for`) or put them back on an object dict
(`with_fields`, to plan again from the snapshot after a crash). Kinds dispatch through tables."""
from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..domain.ports import Obj, PatchType
from ..domain.vocabulary import SelectorMode, TargetKind
from .base import Change, FaultError, Fields, HookCall, RuntimeFault

RESTARTED_AT = "sre.stratus.dev/restartedAt"
DEAD_PORT = 5999  # nothing in the shop listens here: NGINX answers 502, clients fail to connect


def pick(objects: Sequence[Obj], mode: str, value: str | None, seed: str = "") -> list[Obj]:
    """Chaos Mesh's modes over the matching objects: one, all, fixed N, fixed-percent P (at least
    one), chosen the same way for the same seed (the scenario's uid)."""
    objs = sorted(objects, key=lambda o: str(o["metadata"]["name"]))
    if not objs:
        return []
    rnd = random.Random(seed)  # noqa: S311 - a reproducible choice of fault targets, not a secret
    if mode == SelectorMode.ALL:
        return objs
    if mode == SelectorMode.ONE:
        return [rnd.choice(objs)]
    n = int(value or "0")
    count = n if mode == SelectorMode.FIXED else max(1, round(len(objs) * min(n, 100) / 100))
    return rnd.sample(objs, min(count, len(objs)))


def container(deploy: Obj, name: str | None = None) -> Obj:
    """The Deployment's container called `name`, or its first."""
    ctrs: list[Obj] = deploy["spec"]["template"]["spec"]["containers"]
    if name is None:
        return ctrs[0]
    for c in ctrs:
        if c["name"] == name:
            return c
    raise FaultError(f"Deployment {deploy['metadata']['name']} has no container {name!r}")


def with_env(original: Sequence[Obj], values: Mapping[str, str]) -> list[Obj]:
    """`original` with `values` set (replacing variables of the same name, appended at the end)."""
    return [dict(e) for e in original if e["name"] not in values] + [{"name": k, "value": v}
                                                                     for k, v in values.items()]


def env_change(deploy: Obj, values: Mapping[str, str], what: str, recreate: bool = False) -> Change:
    """Set env vars on the Deployment's first container (a rollout), keeping its original env list.
    `recreate` also switches the rollout strategy to Recreate, so the old pods go before the new
    (failing) ones start, as a bad deploy does to a service without a surge."""
    ctr = container(deploy)
    original = copy.deepcopy(ctr.get("env") or [])
    desired: Fields = {"container": ctr["name"], "env": with_env(original, values)}
    snapshot: Fields = {"container": ctr["name"], "env": original}
    if recreate:
        desired["strategy"] = {"type": "Recreate"}
        snapshot["strategy"] = copy.deepcopy(deploy["spec"].get("strategy") or {"type": "RollingUpdate"})
    meta = deploy["metadata"]
    return Change("Deployment", meta["namespace"], meta["name"], desired=desired, snapshot=snapshot,
                  change=f"{what}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def http_port(deploy: Obj) -> int:
    """The container port the Deployment's first container serves on (the one called `http`, else its first)."""
    ports = container(deploy).get("ports") or []
    port = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else None)
    if port is None:
        raise FaultError(f"Deployment {deploy['metadata']['name']} declares no container port for its fault hook")
    return int(port["containerPort"])


def runtime_change(deploy: Obj, inject: Sequence[HookCall], revert: Sequence[HookCall], what: str) -> Change:
    """Flip the Deployment's running processes through their fault hook: no field changes, no rollout."""
    meta = deploy["metadata"]
    selector = dict((deploy["spec"].get("selector") or {}).get("matchLabels") or {})
    if not selector:
        raise FaultError(f"Deployment {meta['name']} has no matchLabels selector to find its pods by")
    return Change("Deployment", meta["namespace"], meta["name"], desired={}, snapshot={},
                  change=f"{what} (runtime, in the running processes: no rollout)",
                  runtime=RuntimeFault(http_port(deploy), selector, tuple(inject), tuple(revert)))


def mounting_deployments(configmap: str, deployments: Sequence[Obj]) -> list[str]:
    """The Deployments with a volume from `configmap` (rolled so their pods read the new config)."""
    out = []
    for d in deployments:
        vols = d["spec"]["template"]["spec"].get("volumes") or []
        if any((v.get("configMap") or {}).get("name") == configmap for v in vols):
            out.append(str(d["metadata"]["name"]))
    return sorted(out)


def config_change(obj: Obj, deployments: Sequence[Obj], edit: Callable[[str], tuple[str, str]]) -> Change:
    """Change the ConfigMap's `*.conf` value with `edit(text) -> (new text, what in words)`."""
    data = obj.get("data") or {}
    key = next((k for k in data if k.endswith(".conf")), None)
    if key is None:
        raise FaultError(f"ConfigMap {obj['metadata']['name']} holds no *.conf key")
    new, what = edit(data[key])
    meta = obj["metadata"]
    return Change("ConfigMap", meta["namespace"], meta["name"], desired={"key": key, "value": new},
                  snapshot={"key": key, "value": data[key]}, change=f"{key}: {what}",
                  restart=mounting_deployments(meta["name"], deployments))


# -- writing fields: one patcher and one "put back" per kind -----------------------------------

Patch = tuple[PatchType, object]


def _configmap_patch(_current: Obj, fields: Fields) -> Patch:
    return "merge", {"data": {fields["key"]: fields["value"]}}


def _service_patch(_current: Obj, fields: Fields) -> Patch:
    # Replaced whole: a merge would keep a selector key the other side lacks.
    return "json", [{"op": "replace", "path": "/spec/selector", "value": fields["selector"]},
                    {"op": "replace", "path": "/spec/ports", "value": fields["ports"]}]


def _deployment_patch(current: Obj, fields: Fields) -> Patch:
    # A JSON patch replacing the container's whole env list: a strategic merge would keep injected variables.
    if set(fields) == {"replicas"}:
        return "merge", {"spec": {"replicas": fields["replicas"]}}
    ctrs = current["spec"]["template"]["spec"]["containers"]
    idx = next((i for i, c in enumerate(ctrs) if c["name"] == fields["container"]), None)
    if idx is None:
        name = current["metadata"]["name"]
        raise FaultError(f"container {fields['container']!r} is gone from Deployment {name}")
    env_path = f"/spec/template/spec/containers/{idx}/env"
    ops: list[Obj] = [{"op": "add", "path": env_path, "value": fields["env"]}]
    if "strategy" in fields:
        ops.append({"op": "add", "path": "/spec/strategy", "value": fields["strategy"]})
    if "replicas" in fields:
        ops.append({"op": "replace", "path": "/spec/replicas", "value": fields["replicas"]})
    return "json", ops


def _configmap_put(obj: Obj, fields: Fields) -> None:
    obj["data"] = {**(obj.get("data") or {}), fields["key"]: fields["value"]}


def _service_put(obj: Obj, fields: Fields) -> None:
    obj.setdefault("spec", {}).update(selector=fields["selector"], ports=fields["ports"])


def _deployment_put(obj: Obj, fields: Fields) -> None:
    spec = obj["spec"]
    if "replicas" in fields:
        spec["replicas"] = fields["replicas"]
    if "strategy" in fields:
        spec["strategy"] = fields["strategy"]
    if "env" in fields:
        container(obj, fields["container"])["env"] = fields["env"]


_PATCHERS: dict[str, Callable[[Obj, Fields], Patch]] = {
    TargetKind.CONFIG_MAP: _configmap_patch, TargetKind.SERVICE: _service_patch,
    TargetKind.DEPLOYMENT: _deployment_patch}
_PUTTERS: dict[str, Callable[[Obj, Fields], None]] = {
    TargetKind.CONFIG_MAP: _configmap_put, TargetKind.SERVICE: _service_put,
    TargetKind.DEPLOYMENT: _deployment_put}


def _for_kind(table: Mapping[str, Any], kind: str) -> Any:
    try:
        return table[kind]
    except KeyError:
        raise FaultError(f"faults do not change a {kind}") from None


def patch_for(kind: str, current: Obj, fields: Fields) -> Patch:
    """(patch type, patch) writing `fields` (a `desired` or a `snapshot`) onto the current object."""
    patcher: Callable[[Obj, Fields], Patch] = _for_kind(_PATCHERS, kind)
    return patcher(current, fields)


def with_fields(kind: str, obj: Obj, fields: Fields) -> Obj:
    """A copy of `obj` with `fields` written into it (what `patch_for` would make of it)."""
    out = copy.deepcopy(obj)
    putter: Callable[[Obj, Fields], None] = _for_kind(_PUTTERS, kind)
    putter(out, fields)
    return out


def restart_patch(at: str) -> Obj:
    """A merge patch rolling a Deployment (as `kubectl rollout restart` does)."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
