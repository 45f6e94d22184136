"""The fault catalogue: every case the benchmark injects, how, how it knows the effect is gone, which
objects are at fault, which the healing may touch, and what healing is expected.

Three sources: `faultscenario` (the project's ten FaultScenario types, seed names kept), `kubectl`
(plain API calls as a person or a bad pipeline makes them, after AIOpsLab's and ITBench's published
fault catalogues) and `runtime` (a process flipped into a bad state through its /fault hook, no
rollout). No case writes a label or an annotation of its own: the operator cannot learn the case from
the objects (kubectl's own `rollout restart` annotation is what any user's restart leaves).

Effect-gone checks are pure functions of (the namespace now, the namespace before the fault).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .objects import Key, Snapshot, container, env_value, state, workload_serving

Check = Callable[[Snapshot, Snapshot], tuple[bool, str]]


class Ctx(Protocol):
    """What an injection may use (runner.RunContext implements it)."""

    namespace: str

    def kubectl(self, *args: str, stdin: str | None = None) -> str: ...

    def fault_scenario(self, ftype: str, target: dict, parameters: dict | None = None) -> None: ...

    def pods(self, workload: str) -> list[dict]: ...  # [{"name", "uid", "ip", "restarts"}]

    def pod_post(self, ip: str, port: int, path: str, body: dict | None = None) -> int: ...


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # faultscenario | kubectl | runtime
    origin: str  # the published fault it follows
    summary: str
    services: tuple[str, ...]  # the faulty workload(s): a right diagnosis names one of them
    faulty: tuple[Key, ...]  # the objects at fault
    allowed: tuple[Key, ...]  # other objects the expected healing changes (not collateral)
    expected: str  # the healing a good SRE would do
    inject: Callable[[Ctx], None]
    check: Check
    probe: tuple[str, ...] = ()  # workloads whose pods are probed (health, /fault) at every reading
    keep: Callable[[Ctx, dict], None] | None = None  # at every reading: keeps a runtime fault in place
    check_doc: str = ""

    @property
    def touchable(self) -> set[Key]:
        return set(self.faulty) | set(self.allowed)


PORTS = {"order": 5001, "product": 5002, "payment": 5003, "gateway": 8080}
DEP, SVC, CM = "Deployment", "Service", "ConfigMap"


# -- checks ------------------------------------------------------------------------------------------

def all_of(*checks: Check) -> Check:
    def check(now: Snapshot, base: Snapshot) -> tuple[bool, str]:
        for c in checks:
            ok, why = c(now, base)
            if not ok:
                return ok, why
        return True, ""
    return check


def serving(name: str, at_least_baseline: bool = False) -> Check:
    def check(now: Snapshot, base: Snapshot) -> tuple[bool, str]:
        want = 1
        if at_least_baseline and base.deployment(name):
            want = base.deployment(name)["spec"].get("replicas", 1)
        return workload_serving(now, name, want)
    return check


def same(kind: str, name: str, part: Callable[[dict], object] = state, what: str = "state") -> Check:
    """The object exists and `part` of it equals the baseline's (the injected change undone)."""
    def check(now: Snapshot, base: Snapshot) -> tuple[bool, str]:
        a, b = base.get(kind, name), now.get(kind, name)
        if b is None:
            return False, f"{kind}/{name} missing"
        if a is not None and part(a) != part(b):
            return False, f"{kind}/{name}: {what} differs from before the fault"
        return True, ""
    return check


def ctr_field(fieldname: str) -> Callable[[dict], object]:
    return lambda d: container(d).get(fieldname)


def pod_spec_field(fieldname: str) -> Callable[[dict], object]:
    return lambda d: d["spec"]["template"]["spec"].get(fieldname)


def runnable(d: dict) -> dict:
    """What makes a workload's pods what they are (a Deployment recreated need not match metadata)."""
    c = container(d)
    return {k: c.get(k) for k in ("image", "command", "args", "env", "ports", "resources", "readinessProbe",
                                  "livenessProbe", "startupProbe")}


def env_not(workload: str, var: str, bad: Callable[[str | None], bool]) -> Check:
    def check(now: Snapshot, _base: Snapshot) -> tuple[bool, str]:
        d = now.deployment(workload)
        if d is None:
            return False, f"deployment {workload} missing"
        v = env_value(d, var)
        return (False, f"{workload}: {var}={v}") if bad(v) else (True, "")
    return check


def truthy(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


def nonzero(v: str | None) -> bool:
    return (v or "0") not in ("0", "")


def env_like_baseline(workload: str, var: str) -> Check:
    return same(DEP, workload, lambda d: env_value(d, var), f"env {var}")


def replicas_at_least(workload: str, n: int) -> Check:
    def check(now: Snapshot, _base: Snapshot) -> tuple[bool, str]:
        d = now.deployment(workload)
        have = 0 if d is None else d["spec"].get("replicas", 1)
        return (have >= n, "" if have >= n else f"{workload} has {have} replicas < {n} (the load was turned off)")
    return check


# -- injections --------------------------------------------------------------------------------------

def fs(ftype: str, target: dict, parameters: dict | None = None) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.fault_scenario(ftype, target, parameters)


def kubectl(*args: str) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.kubectl(*args)


def json_patch(kind: str, name: str, ops: list[dict]) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.kubectl("patch", f"{kind.lower()}/{name}", "--type=json", "-p", json.dumps(ops))


def container_ops(path: str, value: object) -> list[dict]:
    return [{"op": "add", "path": f"/spec/template/spec/containers/0/{path}", "value": value}]


def edit_gateway_upstream(ctx: Ctx) -> None:
    """An edit of the gateway's config (order's upstream on a port nothing serves), then the restart
    that makes NGINX load it: two plain calls, as a person editing the config would make."""
    cm = json.loads(ctx.kubectl("get", "configmap", "gateway-config", "-o", "json"))
    key = next(k for k in cm["data"] if k.endswith(".conf"))
    new, n = re.subn(r"(upstream\s+order_service\s*\{\s*server\s+[A-Za-z0-9_.-]+):\d+", r"\1:5011", cm["data"][key])
    if n == 0:
        raise RuntimeError("the gateway config has no order upstream to edit")
    ctx.kubectl("patch", "configmap/gateway-config", "--type=merge", "-p", json.dumps({"data": {key: new}}))
    ctx.kubectl("rollout", "restart", "deployment/gateway")


def delete_gateway_config(ctx: Ctx) -> None:
    """The gateway's ConfigMap deleted, then its pod replaced (a node drain, an eviction): the new pod
    cannot mount its config."""
    ctx.kubectl("delete", "configmap", "gateway-config", "--wait=true")
    ctx.kubectl("delete", "pod", "-l", "app.kubernetes.io/name=gateway", "--wait=false")


def runtime(workload: str, path: str, body: dict | None = None) -> tuple[Callable[[Ctx], None],
                                                                          Callable[[Ctx, dict], None]]:
    """Flip every pod of the workload through its /fault hook (in memory: no rollout), and keep it
    flipped across container restarts of the same pod (the bad state lives with the pod, as state in
    its emptyDir would); a new pod (deleted, restarted by a rollout) starts clean."""
    port = PORTS[workload]

    def inject(ctx: Ctx) -> None:
        pods = ctx.pods(workload)
        if not pods:
            raise RuntimeError(f"no pod of {workload} to flip")
        for p in pods:
            code = ctx.pod_post(p["ip"], port, path, body)
            if code != 200:
                raise RuntimeError(f"{workload} pod {p['name']}: {path} answered {code}")

    def keep(ctx: Ctx, memory: dict) -> None:
        flipped: dict[str, int] = memory.setdefault("flipped", {})
        if not flipped:  # the first reading: the pods as injected
            flipped.update({p["uid"]: p["restarts"] for p in ctx.pods(workload)})
            return
        for p in ctx.pods(workload):
            if p["uid"] in flipped and p["restarts"] > flipped[p["uid"]] and p["ip"] and \
                    ctx.pod_post(p["ip"], port, path, body) == 200:
                flipped[p["uid"]] = p["restarts"]

    return inject, keep


# -- the catalogue -----------------------------------------------------------------------------------

def _cases() -> list[Case]:
    out: list[Case] = []

    def add(name: str, source: str, origin: str, summary: str, services: tuple[str, ...],
            faulty: tuple[Key, ...], allowed: tuple[Key, ...], expected: str, inject: Callable[[Ctx], None],
            check: Check, check_doc: str, probe: tuple[str, ...] = (),
            keep: Callable[[Ctx, dict], None] | None = None) -> None:
        out.append(Case(name, source, origin, summary, services, faulty, allowed, expected, inject, check,
                        probe or services, keep, check_doc))

    gw_conf = same(CM, "gateway-config", lambda c: c.get("data"), "data")
    # FaultScenarios (seed names kept): the operator's own injector applies them; duration far beyond the run.
    add("bad-gateway-config", "faultscenario", "seed scenario 1",
        "gateway ConfigMap upstreams on a dead port, gateway rolled → 502", ("gateway",),
        ((CM, "gateway-config"),), ((DEP, "gateway"),), "restore the ConfigMap, restart the gateway",
        fs("bad-gateway-config", {"kind": "ConfigMap", "name": "gateway-config"}),
        all_of(gw_conf, serving("gateway")), "gateway-config data as before; gateway Ready and serving")
    add("payment-crash", "faultscenario", "seed scenario 2",
        "payment rolled out in its failed state (SHOP_FAULT_CRASHED, Recreate)", ("payment",),
        ((DEP, "payment"),), (), "roll back payment",
        fs("payment-crash", {"kind": "Deployment", "name": "payment"}),
        all_of(env_not("payment", "SHOP_FAULT_CRASHED", truthy), serving("payment")),
        "payment without SHOP_FAULT_CRASHED; Ready and serving")
    add("product-overload", "faultscenario", "seed scenario 3",
        "product revision adds 900 ms per request", ("product",), ((DEP, "product"),), (), "roll back product",
        fs("product-overload", {"kind": "Deployment", "name": "product"}, {"latencyMs": 900}),
        all_of(env_not("product", "SHOP_FAULT_LATENCY_MS", nonzero), env_not("product", "SHOP_FAULT_CPU_MS", nonzero),
               serving("product")), "product without SHOP_FAULT_LATENCY_MS/CPU_MS; no latency set in any pod")
    add("bad-rollout", "faultscenario", "project scenario",
        "a new payment revision crashes; the old pod keeps serving", ("payment",), ((DEP, "payment"),), (),
        "roll back payment", fs("bad-rollout", {"kind": "Deployment", "name": "payment"}),
        all_of(env_not("payment", "SHOP_FAULT_CRASHED", truthy), serving("payment")),
        "payment without SHOP_FAULT_CRASHED; rollout complete, Ready")
    add("bad-env", "faultscenario", "project scenario (AIOpsLab misconfig_app)",
        "order's SHOP_PAYMENT_URL on a dead port", ("order",), ((DEP, "order"),), (), "roll back order",
        fs("bad-env", {"kind": "Deployment", "name": "order"}),
        all_of(env_like_baseline("order", "SHOP_PAYMENT_URL"), serving("order")),
        "order's SHOP_PAYMENT_URL as before; Ready")
    add("scale-to-zero", "faultscenario", "AIOpsLab scale_pod_zero",
        "product scaled to 0", ("product",), ((DEP, "product"),), (), "scale product back",
        fs("scale-to-zero", {"kind": "Deployment", "name": "product"}), serving("product", at_least_baseline=True),
        "product replicas ≥ before, all Ready")
    add("route-removed", "faultscenario", "project scenario",
        "/api/products location taken out of the gateway config → 404", ("gateway",),
        ((CM, "gateway-config"),), ((DEP, "gateway"),), "restore the ConfigMap, restart the gateway",
        fs("route-removed", {"kind": "ConfigMap", "name": "gateway-config"}, {"route": "/api/products"}),
        all_of(gw_conf, serving("gateway")), "gateway-config data as before; gateway Ready")
    svc_payment = same(SVC, "payment", state, "selector/ports")
    add("service-selector-mismatch", "faultscenario", "AIOpsLab k8s_target_port-misconfig family",
        "payment's Service selects payment-v2", ("payment",), ((SVC, "payment"),), (),
        "restore payment's Service", fs("service-selector-mismatch", {"kind": "Service", "name": "payment"}),
        all_of(svc_payment, serving("payment")), "payment Service selector/ports as before; payment Ready")
    add("real-overload", "faultscenario", "project scenario (ITBench saturation)",
        "loadgen sends 80 catalogue reads/s, more than one product pod serves", ("product",),
        ((DEP, "loadgen"),), ((DEP, "product"),), "scale product out (the load is real: it stays)",
        fs("real-overload", {"kind": "Deployment", "name": "loadgen"}),
        all_of(replicas_at_least("loadgen", 1), serving("product")),
        "the load stays on (loadgen ≥ 1 replica); product Ready; the SLO (P95) is the proof")
    add("memory-leak", "faultscenario", "project scenario (ITBench memory)",
        "a product revision leaks 4 MiB a request → OOM kills", ("product",), ((DEP, "product"),), (),
        "roll back product", fs("memory-leak", {"kind": "Deployment", "name": "product"}),
        all_of(env_not("product", "SHOP_FAULT_LEAK_KB", nonzero), serving("product")),
        "product without SHOP_FAULT_LEAK_KB; Ready")

    # Plain API calls.
    add("service-deleted", "kubectl", "AIOpsLab/ITBench: a missing Service",
        "`kubectl delete service payment`", ("payment",), ((SVC, "payment"),), (),
        "recreate payment's Service from its last healthy copy", kubectl("delete", "service", "payment"),
        all_of(svc_payment, serving("payment")), "Service payment exists, selector/ports as before")
    add("deployment-deleted", "kubectl", "ITBench: a deleted workload",
        "`kubectl delete deployment product`", ("product",), ((DEP, "product"),), (),
        "recreate product's Deployment from its last healthy copy", kubectl("delete", "deployment", "product"),
        all_of(same(DEP, "product", runnable, "pod template"), serving("product", at_least_baseline=True)),
        "Deployment product exists with the same containers, replicas ≥ before, Ready")
    add("wrong-image", "kubectl", "ITBench #23 corrupt image / ImagePullBackOff",
        "`kubectl set image` payment to a misspelt repository (localkube ignores tags)", ("payment",),
        ((DEP, "payment"),), (), "roll back payment",
        kubectl("set", "image", "deployment/payment", "payment=sre-operator/shop-paymnet:0.1.0"),
        all_of(same(DEP, "payment", ctr_field("image"), "image"), serving("payment")),
        "image as before; rollout complete, all pods Ready")
    add("wrong-command", "kubectl", "AIOpsLab wrong_bin_usage",
        "order's command points at a module that does not exist → crash loop", ("order",), ((DEP, "order"),), (),
        "roll back order", json_patch(DEP, "order", container_ops("command", ["python3", "-m", "shop.ordr"])),
        all_of(same(DEP, "order", lambda d: (container(d).get("command"), container(d).get("args")), "command"),
               serving("order")), "command/args as before; rollout complete")
    add("readiness-wrong-path", "kubectl", "SREArena/AIOpsLab family: readiness probe misconfigured",
        "product's readiness probe on /readyz (404) → the new pod is never Ready", ("product",),
        ((DEP, "product"),), (), "roll back product",
        json_patch(DEP, "product", [{"op": "replace",
                                     "path": "/spec/template/spec/containers/0/readinessProbe/httpGet/path",
                                     "value": "/readyz"}]),
        all_of(same(DEP, "product", ctr_field("readinessProbe"), "readiness probe"), serving("product")),
        "readiness probe as before; all pods Ready")
    add("liveness-kills", "kubectl", "SREArena LivenessProbeTooAggressive",
        "payment's liveness probe on /healthz every 2 s, one failure → healthy pods killed", ("payment",),
        ((DEP, "payment"),), (), "roll back payment",
        json_patch(DEP, "payment", [{"op": "replace", "path": "/spec/template/spec/containers/0/livenessProbe",
                                     "value": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2,
                                               "failureThreshold": 1, "timeoutSeconds": 1}}]),
        all_of(same(DEP, "payment", ctr_field("livenessProbe"), "liveness probe"), serving("payment")),
        "liveness probe as before; all pods Ready")
    add("memory-limit-too-low", "kubectl", "ITBench #102 memory limits / OOMKilled",
        "product's memory limit 32Mi → OOM-killed at start", ("product",), ((DEP, "product"),), (),
        "roll back product",
        json_patch(DEP, "product", [{"op": "replace", "path": "/spec/template/spec/containers/0/resources",
                                     "value": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                               "limits": {"cpu": "500m", "memory": "32Mi"}}}]),
        all_of(same(DEP, "product", ctr_field("resources"), "resources"), serving("product")),
        "resources as before; all pods Ready")
    add("unschedulable", "kubectl", "AIOpsLab assign_to_non_existent_node",
        "order's nodeSelector names a disk no node has → Pending", ("order",), ((DEP, "order"),), (),
        "roll back order",
        json_patch(DEP, "order", [{"op": "add", "path": "/spec/template/spec/nodeSelector",
                                   "value": {"disktype": "nvme"}}]),
        all_of(same(DEP, "order", pod_spec_field("nodeSelector"), "nodeSelector"), serving("order")),
        "nodeSelector as before; all pods scheduled and Ready")
    add("env-missing-secret", "kubectl", "AIOpsLab auth_miss / ITBench: missing Secret",
        "payment's env reads a key of a Secret that does not exist → CreateContainerConfigError", ("payment",),
        ((DEP, "payment"),), (), "roll back payment",
        json_patch(DEP, "payment", [{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                                     "value": {"name": "SHOP_PAYMENT_API_KEY", "valueFrom": {"secretKeyRef": {
                                         "name": "payment-credentials", "key": "api-key"}}}}]),
        all_of(same(DEP, "payment", ctr_field("env"), "env"), serving("payment")), "env as before; all pods Ready")
    # The limit is below what product uses at the benchmark's load (~15–17m measured unthrottled): at
    # 50m, three times its use, it was throttled in 3–18 % of its periods with P95 as before the fault:
    # no effect to heal, not the "too low for its load" this case is about.
    add("cpu-throttle", "kubectl", "ITBench #3 CPU / CPU throttling",
        "product's CPU limit 20m, near what it uses → throttled, slow", ("product",), ((DEP, "product"),), (),
        "roll back product",
        json_patch(DEP, "product", [{"op": "replace", "path": "/spec/template/spec/containers/0/resources",
                                     "value": {"requests": {"cpu": "10m", "memory": "96Mi"},
                                               "limits": {"cpu": "20m", "memory": "256Mi"}}}]),
        all_of(same(DEP, "product", ctr_field("resources"), "resources"), serving("product")),
        "resources as before; all pods Ready")
    add("gateway-config-edited", "kubectl", "ITBench/AIOpsLab misconfig: a ConfigMap mis-edited",
        "`kubectl patch` of gateway-config (order upstream → :5011), then `kubectl rollout restart`", ("gateway",),
        ((CM, "gateway-config"),), ((DEP, "gateway"),), "restore the ConfigMap, restart the gateway",
        edit_gateway_upstream, all_of(gw_conf, serving("gateway")), "gateway-config data as before; gateway Ready")
    add("gateway-config-deleted", "kubectl", "ITBench: a deleted ConfigMap",
        "`kubectl delete configmap gateway-config`, then the gateway pod replaced → it cannot start",
        ("gateway",), ((CM, "gateway-config"), (DEP, "gateway")), (),
        "recreate the ConfigMap from its last healthy copy", delete_gateway_config,
        all_of(gw_conf, serving("gateway")), "gateway-config exists with its data as before; gateway Ready")
    add("service-port-wrong", "kubectl", "AIOpsLab k8s_target_port-misconfig",
        "order's Service targetPort → 5999 by plain patch", ("order",), ((SVC, "order"),), (),
        "restore order's Service",
        json_patch(SVC, "order", [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 5999}]),
        all_of(same(SVC, "order", state, "selector/ports"), serving("order")),
        "Service order selector/ports as before")

    # Runtime: in a process, no rollout. The seed's faults 2 and 3; the right fix is a restart.
    inj, keep = runtime("payment", "/fault/crash")
    add("payment-crash-runtime", "runtime", "seed fault 2 (AIOpsLab pod_failure)",
        "payment's process flipped into its failed state (POST /fault/crash); survives container restarts",
        ("payment",), ((DEP, "payment"),), (), "restart payment's pod (delete-pod or rollout-restart), no rollback",
        inj, serving("payment"), "every payment pod Ready, /health 200, /fault crashed=false", keep=keep)
    inj, keep = runtime("product", "/fault/latency", {"ms": 900})
    add("product-degraded-runtime", "runtime", "seed fault 3",
        "product's process slowed by 900 ms a request (POST /fault/latency)", ("product",), ((DEP, "product"),), (),
        "restart product's pod (delete-pod or rollout-restart), no rollback", inj, serving("product"),
        "every product pod Ready, /health 200, /fault latency 0", keep=keep)
    return out


CASES: tuple[Case, ...] = tuple(_cases())
BY_NAME = {c.name: c for c in CASES}
SEED = ("bad-gateway-config", "payment-crash", "product-overload")
