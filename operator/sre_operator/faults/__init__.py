"""What each FaultScenario type changes, as pure functions over Kubernetes objects (dicts).

`plan(scenario, targets, deployments)` says which objects to change: for each, the `desired`
state of the fields it touches and the `snapshot` of their original values, in the same shape, so
injecting writes `desired` and reverting writes `snapshot` through the same `patch_for` (the
adapter in `kube.py` only reads objects and applies patches). Injecting and reverting work the same
on kind and on the local cluster, and reverting twice is harmless: the second time writes what is
already there.

Types handled here: `bad-gateway-config` (a gateway ConfigMap whose upstreams point at a port
nothing listens on, or `parameters.config`; the Deployments mounting it are rolled so NGINX loads
it), `payment-crash` (the service's fault hook `SHOP_FAULT_CRASHED`: health and API answer 503,
liveness restarts it again and again) and `product-overload` (`SHOP_FAULT_LATENCY_MS` /
`SHOP_FAULT_CPU_MS` on every API request), `bad-rollout` (a new revision whose pods crash; the
rolling update keeps the old ones), `bad-env` (an environment value that breaks a call, by default
order's payment URL) and `scale-to-zero`; `route-removed` (one `location` of the gateway config
taken out: that path answers 404), `service-selector-mismatch` (a Service's selector, or with
`parameters.targetPort` its target port, no longer matches its pods), `real-overload` (the shop's
idle load generator Deployment scaled up: real requests, no fault hook) and `memory-leak` (the
service's leak hook: memory kept on every request until the container's limit kills it).
"""
from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field

RESTARTED_AT = "sre.stratus.dev/restartedAt"
DEAD_PORT = 5999  # nothing in the shop listens here: NGINX answers 502
SUPPORTED = ("bad-gateway-config", "payment-crash", "product-overload", "bad-rollout", "bad-env", "scale-to-zero",
             "route-removed", "service-selector-mismatch", "real-overload", "memory-leak")
DEFAULT_ROUTE = "/api/products"
DEFAULT_LEAK_KB = 4096
DEFAULT_OVERLOAD_RPS = 80
# bad-env's default: the dependency URL of the target that breaks its calls (a port nothing serves).
BAD_ENV_DEFAULTS = {"order": {"SHOP_PAYMENT_URL": f"http://payment:{DEAD_PORT}"}}


class FaultError(ValueError):
    """The scenario cannot be injected as written (the message says why)."""


@dataclass
class Change:
    kind: str
    namespace: str
    name: str
    # {"container", "env"[, "strategy"][, "replicas"]} or {"replicas"} for a Deployment, {"key", "value"}
    # for a ConfigMap, {"selector", "ports"} for a Service
    desired: dict
    snapshot: dict  # the same fields as they were
    change: str
    restart: list[str] = field(default_factory=list)  # Deployments to roll after a ConfigMap change


def parse_duration(text: str) -> float:
    """Go-style durations as the CRD accepts them: `90s`, `5m`, `1h30m`, `250ms`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise FaultError(f"invalid duration {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pick(objects: list[dict], mode: str, value: str | None, seed: str = "") -> list[dict]:
    """Chaos Mesh's modes over the matching objects: one, all, fixed N, fixed-percent P."""
    objs = sorted(objects, key=lambda o: o["metadata"]["name"])
    if not objs:
        return []
    rnd = random.Random(seed)
    if mode == "all":
        return objs
    if mode == "one":
        return [rnd.choice(objs)]
    n = int(value or "0")
    count = n if mode == "fixed" else max(1, round(len(objs) * min(n, 100) / 100))
    return rnd.sample(objs, min(count, len(objs)))


def _container(deploy: dict, name: str | None = None) -> dict:
    ctrs = deploy["spec"]["template"]["spec"]["containers"]
    if name:
        for c in ctrs:
            if c["name"] == name:
                return c
        raise FaultError(f"Deployment {deploy['metadata']['name']} has no container {name!r}")
    return ctrs[0]


def _env_change(deploy: dict, values: dict[str, str], what: str, recreate: bool = False) -> Change:
    """Set env vars on the Deployment's first container (a rollout), keeping its original env list.
    `recreate` also switches the rollout strategy to Recreate, so the old pods go before the new
    (failing) ones start, as a bad deploy does to a service without a surge."""
    ctr = _container(deploy)
    original = ctr.get("env") or []
    env = [e for e in original if e["name"] not in values] + [{"name": k, "value": v} for k, v in values.items()]
    meta = deploy["metadata"]
    desired: dict = {"container": ctr["name"], "env": env}
    snapshot: dict = {"container": ctr["name"], "env": original}
    if recreate:
        desired["strategy"] = {"type": "Recreate"}
        snapshot["strategy"] = deploy["spec"].get("strategy") or {"type": "RollingUpdate"}
    return Change("Deployment", meta["namespace"], meta["name"], desired=desired, snapshot=snapshot,
                  change=f"{what}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def broken_gateway_config(config: str) -> str:
    """The same NGINX config with every upstream server pointed at a port nothing listens on."""
    broken, n = re.subn(r"(server\s+[A-Za-z0-9_.-]+):\d+", rf"\1:{DEAD_PORT}", config)
    if n == 0:
        raise FaultError("the gateway config has no upstream `server host:port` lines to break")
    return broken


def without_route(config: str, route: str) -> str:
    """The same NGINX config without the `location` block that serves `route`."""
    pattern = re.compile(r"^[ \t]*location\s+(?:\^~\s+)?" + re.escape(route) + r"\s*\{[^{}]*\}[ \t]*\n?", re.M)
    out, n = pattern.subn("", config)
    if n == 0:
        raise FaultError(f"the gateway config has no `location {route}` block to remove")
    return out


def mounting_deployments(configmap: str, deployments: list[dict]) -> list[str]:
    out = []
    for d in deployments:
        vols = d["spec"]["template"]["spec"].get("volumes") or []
        if any((v.get("configMap") or {}).get("name") == configmap for v in vols):
            out.append(d["metadata"]["name"])
    return sorted(out)


def plan(scenario: dict, targets: list[dict], deployments: list[dict]) -> list[Change]:
    """The changes a scenario makes to its (already selected) target objects."""
    spec = scenario["spec"]
    ftype = spec["type"]
    params = spec.get("parameters") or {}
    if ftype not in SUPPORTED:
        raise FaultError(f"fault type {ftype!r} is not implemented yet (implemented: {', '.join(SUPPORTED)})")
    if not targets:
        raise FaultError("no object matches the target")
    changes = []
    for obj in targets:
        kind = obj.get("kind")
        if ftype in ("bad-gateway-config", "route-removed"):
            changes.append(_config_change(obj, ftype, params, deployments))
        elif ftype == "service-selector-mismatch":
            changes.append(_service_change(obj, params))
        else:
            if kind != "Deployment":
                raise FaultError(f"{ftype} targets a Deployment (target.kind: Deployment)")
            if ftype == "payment-crash":
                changes.append(_env_change(obj, {"SHOP_FAULT_CRASHED": "true"}, "crashed state, Recreate rollout",
                                           recreate=True))
            elif ftype == "bad-rollout":
                # A new revision whose pods fail: the rolling update keeps the old pods serving and
                # stalls, as a bad deploy does where maxUnavailable is 0.
                changes.append(_env_change(obj, {"SHOP_FAULT_CRASHED": "true"}, "a new revision that crashes"))
            elif ftype == "bad-env":
                values = {str(k): str(v) for k, v in (params.get("env") or {}).items()} or \
                    BAD_ENV_DEFAULTS.get(obj["metadata"]["name"], {})
                if not values:
                    raise FaultError("bad-env needs parameters.env (NAME: value) for this target")
                changes.append(_env_change(obj, values, "wrong environment"))
            elif ftype == "memory-leak":
                kb = int(params.get("leakKbPerRequest") or DEFAULT_LEAK_KB)
                changes.append(_env_change(obj, {"SHOP_FAULT_LEAK_KB": str(kb)}, "a new revision that leaks memory"))
            elif ftype == "real-overload":
                meta = obj["metadata"]
                ctr = _container(obj)
                rps = str(params.get("rps") or DEFAULT_OVERLOAD_RPS)
                original = ctr.get("env") or []
                env = [e for e in original if e["name"] != "SHOP_TRAFFIC_RPS"] + [{"name": "SHOP_TRAFFIC_RPS", "value": rps}]
                replicas = int(params.get("replicas") or 1)
                changes.append(Change("Deployment", meta["namespace"], meta["name"],
                                      desired={"container": ctr["name"], "env": env, "replicas": replicas},
                                      snapshot={"container": ctr["name"], "env": original,
                                                "replicas": int(obj["spec"].get("replicas", 0))},
                                      change=f"load generator on: {replicas} × {rps} requests/s"))
            elif ftype == "scale-to-zero":
                meta = obj["metadata"]
                changes.append(Change("Deployment", meta["namespace"], meta["name"], desired={"replicas": 0},
                                      snapshot={"replicas": int(obj["spec"].get("replicas", 1))},
                                      change=f"replicas {obj['spec'].get('replicas', 1)} → 0"))
            else:
                values = {}
                if params.get("latencyMs"):
                    values["SHOP_FAULT_LATENCY_MS"] = str(params["latencyMs"])
                if params.get("cpuMs"):
                    values["SHOP_FAULT_CPU_MS"] = str(params["cpuMs"])
                changes.append(_env_change(obj, values, "overload"))
    return changes


def _config_change(obj: dict, ftype: str, params: dict, deployments: list[dict]) -> Change:
    if obj.get("kind") != "ConfigMap":
        raise FaultError(f"{ftype} targets a ConfigMap (target.kind: ConfigMap)")
    data = obj.get("data") or {}
    key = next((k for k in data if k.endswith(".conf")), None)
    if key is None:
        raise FaultError(f"ConfigMap {obj['metadata']['name']} holds no *.conf key")
    if ftype == "route-removed":
        route = params.get("route") or DEFAULT_ROUTE
        new, what = without_route(data[key], route), f"{key}: location {route} removed"
    elif params.get("config"):
        new, what = params["config"], f"{key}: replaced by parameters.config"
    else:
        new, what = broken_gateway_config(data[key]), f"{key}: upstreams broken"
    meta = obj["metadata"]
    return Change("ConfigMap", meta["namespace"], meta["name"], desired={"key": key, "value": new},
                  snapshot={"key": key, "value": data[key]}, change=what,
                  restart=mounting_deployments(meta["name"], deployments))


def _service_change(obj: dict, params: dict) -> Change:
    """A selector that matches no pod (a label renamed on one side only), or with
    `parameters.targetPort` a target port no container listens on."""
    if obj.get("kind") != "Service":
        raise FaultError("service-selector-mismatch targets a Service (target.kind: Service)")
    spec, meta = obj["spec"], obj["metadata"]
    selector = dict(spec.get("selector") or {})
    ports = [dict(p) for p in spec.get("ports") or []]
    if not selector or not ports:
        raise FaultError(f"Service {meta['name']} has no selector or no ports to break")
    if params.get("targetPort"):
        broken_ports = [{**p, "targetPort": params["targetPort"]} for p in ports]
        desired, what = {"selector": selector, "ports": broken_ports}, f"targetPort → {params['targetPort']}"
    else:
        key = "app.kubernetes.io/name" if "app.kubernetes.io/name" in selector else sorted(selector)[0]
        broken = {**selector, key: f"{selector[key]}-v2"}
        desired, what = {"selector": broken, "ports": ports}, f"selector {key}={selector[key]}-v2"
    return Change("Service", meta["namespace"], meta["name"], desired=desired,
                  snapshot={"selector": selector, "ports": ports}, change=what)


def patch_for(kind: str, current: dict, fields: dict) -> tuple[str, object]:
    """(patch type, patch) writing `fields` (a `desired` or a `snapshot`) onto the current object:
    a JSON patch replacing the container's whole env list (a strategic merge would keep injected
    variables), a merge patch for a ConfigMap key."""
    if kind == "ConfigMap":
        return "merge", {"data": {fields["key"]: fields["value"]}}
    if kind == "Service":  # replaced whole: a merge would keep a selector key the other side lacks
        return "json", [{"op": "replace", "path": "/spec/selector", "value": fields["selector"]},
                        {"op": "replace", "path": "/spec/ports", "value": fields["ports"]}]
    if set(fields) == {"replicas"}:
        return "merge", {"spec": {"replicas": fields["replicas"]}}
    ctrs = current["spec"]["template"]["spec"]["containers"]
    idx = next((i for i, c in enumerate(ctrs) if c["name"] == fields["container"]), None)
    if idx is None:
        raise FaultError(f"container {fields['container']!r} is gone from Deployment {current['metadata']['name']}")
    ops = [{"op": "add", "path": f"/spec/template/spec/containers/{idx}/env", "value": fields["env"]}]
    if "strategy" in fields:
        ops.append({"op": "add", "path": "/spec/strategy", "value": fields["strategy"]})
    if "replicas" in fields:
        ops.append({"op": "replace", "path": "/spec/replicas", "value": fields["replicas"]})
    return "json", ops


def restart_patch(at: str) -> dict:
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
