"""FaultScenarios injected and reverted against the in-memory cluster, through the same functions
the kopf handlers call (`faults.reconcile`): every fault type from inject to revert, an operator
killed at any call, invalid scenarios, and the conditions."""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from sre_operator.domain import clock
from sre_operator.domain.ports import ClusterError, Obj, PatchType
from sre_operator.domain.vocabulary import FaultType
from sre_operator.faults import conditions, injector, reconcile
from tests.fakes.cluster import MemoryCluster, deployment, shop

NS = "shop"
KIND = "FaultScenario"


def env(obj: Obj, container: int = 0) -> dict[str, str]:
    ctr = obj["spec"]["template"]["spec"]["containers"][container]
    return {e["name"]: e["value"] for e in ctr.get("env") or []}


def conf(c: MemoryCluster) -> str:
    return str(c.objects[("ConfigMap", NS, "gateway-config")]["data"]["nginx.conf"])


def dep(c: MemoryCluster, name: str) -> Obj:
    return c.objects[("Deployment", NS, name)]


def restarted(c: MemoryCluster, name: str) -> bool:
    annotations = dep(c, name)["spec"]["template"].get("metadata", {}).get("annotations") or {}
    return "sre.stratus.dev/restartedAt" in annotations


# Per fault type: the scenario's target, its parameters, and what the target looks like once injected.
Check = Callable[[MemoryCluster], bool]
CASES: dict[FaultType, tuple[Obj, Obj, Check]] = {
    FaultType.BAD_GATEWAY_CONFIG: ({"kind": "ConfigMap", "name": "gateway-config"}, {},
                                   lambda c: "order:5999" in conf(c) and ":5001" not in conf(c)
                                   and restarted(c, "gateway")),
    FaultType.PAYMENT_CRASH: ({"name": "payment"}, {},
                              lambda c: env(dep(c, "payment")) == {"SHOP_FAULT_CRASHED": "true"}
                              and dep(c, "payment")["spec"]["strategy"] == {"type": "Recreate"}),
    FaultType.PRODUCT_OVERLOAD: ({"name": "product"}, {"latencyMs": 800, "cpuMs": 20},
                                 lambda c: env(dep(c, "product")) == {"SHOP_FAULT_LATENCY_MS": "800",
                                                                      "SHOP_FAULT_CPU_MS": "20"}),
    FaultType.SCALE_TO_ZERO: ({"name": "product"}, {}, lambda c: dep(c, "product")["spec"]["replicas"] == 0),
    FaultType.BAD_ROLLOUT: ({"name": "payment"}, {},
                            lambda c: env(dep(c, "payment")) == {"SHOP_FAULT_CRASHED": "true"}
                            and dep(c, "payment")["spec"]["strategy"] == {"type": "RollingUpdate"}),
    FaultType.SERVICE_SELECTOR_MISMATCH: (
        {"kind": "Service", "name": "payment"}, {},
        lambda c: c.objects[("Service", NS, "payment")]["spec"]["selector"] == {
            "app.kubernetes.io/name": "payment-v2"}),
    FaultType.BAD_ENV: ({"name": "order"}, {},
                        lambda c: env(dep(c, "order")) == {"SHOP_PAYMENT_URL": "http://payment:5999"}),
    FaultType.REAL_OVERLOAD: ({"name": "loadgen"}, {"rps": 120, "replicas": 2},
                              lambda c: dep(c, "loadgen")["spec"]["replicas"] == 2
                              and env(dep(c, "loadgen")) == {"SHOP_TRAFFIC_RPS": "120"}),
    FaultType.MEMORY_LEAK: ({"name": "product"}, {"leakKbPerRequest": 512},
                            lambda c: env(dep(c, "product")) == {"SHOP_FAULT_LEAK_KB": "512"}),
    FaultType.ROUTE_REMOVED: ({"kind": "ConfigMap", "name": "gateway-config"}, {"route": "/api/payments"},
                              lambda c: "location /api/payments" not in conf(c)
                              and "location /api/orders" in conf(c) and restarted(c, "gateway")),
}


def cluster() -> MemoryCluster:
    c = shop(MemoryCluster())
    c.create("Deployment", NS, deployment("loadgen", NS, replicas=0, env={"SHOP_TRAFFIC_RPS": "80"}))
    c.create("Deployment", "other", deployment("payment", "other"))
    c.controllers()
    return c


def state(c: MemoryCluster) -> dict[tuple[str, str, str], Any]:
    """What faults change: Deployments' specs without the rollout annotation, Services, ConfigMaps."""
    out: dict[tuple[str, str, str], Any] = {}
    for key, obj in c.objects.items():
        if key[0] == "Deployment":
            spec = copy.deepcopy(obj["spec"])
            tmeta = spec["template"].get("metadata", {})
            tmeta.get("annotations", {}).pop("sre.stratus.dev/restartedAt", None)
            if tmeta.get("annotations") == {}:
                del tmeta["annotations"]
            out[key] = spec
        elif key[0] == "Service":
            out[key] = obj["spec"]
        elif key[0] == "ConfigMap":
            out[key] = obj.get("data")
    return copy.deepcopy(out)


def create(c: MemoryCluster, ftype: str, target: Obj, duration: str = "90s", name: str = "fault",
           **spec: Any) -> Obj:
    c.create(KIND, NS, {"metadata": {"name": name},
                        "spec": {"type": ftype, "target": target, "duration": duration, **spec}})
    return read(c, name)


def read(c: MemoryCluster, name: str = "fault") -> Obj:
    return reconcile.scenario_of(c.objects[(KIND, NS, name)])


def write(c: MemoryCluster, status: Obj, name: str = "fault") -> Obj:
    """What kopf does with a handler's status patch."""
    if status:
        c.patch_status(KIND, NS, name, status)
    return read(c, name)


def conds(scenario: Obj) -> dict[str, Obj]:
    return {x["type"]: x for x in scenario["status"]["conditions"]}


def truth(scenario: Obj) -> dict[str, str]:
    return {t: x["status"] for t, x in conds(scenario).items()}


def test_every_fault_type_has_a_case() -> None:
    assert set(CASES) == set(FaultType)


@pytest.mark.parametrize("ftype", list(FaultType), ids=str)
def test_inject_then_revert_after_the_duration(ftype: FaultType) -> None:
    c = cluster()
    target, params, injected = CASES[ftype]
    before = state(c)
    fs = create(c, ftype, target, parameters=params)
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    st = fs["status"]
    assert st["phase"] == "Injected" and injected(c), st
    assert st["injectedAt"] == c.stamp() and st["observedGeneration"] == 1
    assert clock.parse(st["revertAt"]) == c.now + dt.timedelta(seconds=90)
    assert [r["phase"] for r in st["targets"]] == ["Injected"]
    assert truth(fs) == {"Selected": "True", "AllInjected": "True", "AllRecovered": "False"}
    assert reconcile.on_create(c, fs, now=c.clock) == {}  # a replayed create handler does nothing
    c.tick(60)
    assert reconcile.on_timer(c, fs, now=c.clock) == {}  # not due yet
    assert injected(c)
    c.tick(31)
    fs = write(c, reconcile.on_timer(c, fs, now=c.clock))
    assert fs["status"]["phase"] == "Reverted" and fs["status"]["reason"] == "DurationElapsed"
    assert fs["status"]["revertedAt"] == c.stamp()
    assert state(c) == before
    assert truth(fs) == {"Selected": "True", "AllInjected": "False", "AllRecovered": "True"}
    assert reconcile.on_delete(c, fs, now=c.clock) == {}  # nothing left to revert


class Killed(Exception):
    """The operator process dying in the middle of a call."""


def kill() -> None:
    raise Killed


class Crashing:
    """The cluster, with `then` run at its `at`-th call before the call reaches the API (by default:
    the operator killed)."""

    def __init__(self, cluster: MemoryCluster, at: int, then: Callable[[], None] = kill) -> None:
        self.cluster, self.at, self.calls, self.then = cluster, at, 0, then

    def _call(self) -> None:
        self.calls += 1
        if self.calls == self.at:
            self.then()

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self._call()
        return self.cluster.get(kind, namespace, name)

    def list_objects(self, kind: str, namespace: str, labels: Mapping[str, str] | None = None) -> list[Obj]:
        self._call()
        return self.cluster.list_objects(kind, namespace, labels)

    def create(self, kind: str, namespace: str, body: Obj) -> Obj:
        self._call()
        return self.cluster.create(kind, namespace, body)

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        self._call()
        self.cluster.patch(kind, namespace, name, patch_type, body)

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        self._call()
        self.cluster.patch_status(kind, namespace, name, status)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._call()
        self.cluster.delete(kind, namespace, name)

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        self._call()
        return self.cluster.logs(namespace, pod, container, lines)

    def pod_proxy(self, namespace: str, pod: str, port: int, method: str, path: str,
                  body: Obj | None = None) -> tuple[int, str]:
        self._call()
        return self.cluster.pod_proxy(namespace, pod, port, method, path, body)


def reverted_after_a_kill_at_each_call(c: MemoryCluster, at: int) -> list[MemoryCluster]:
    """For each API call of a revert: a copy of `c` whose operator was killed at that call and whose
    retry then reverted (phase Reverted); the copies, for the caller to check what is left."""
    out = []
    for again in range(1, calls_of(lambda k: reconcile.on_delete(k, read(k.cluster), now=k.cluster.clock), c) + 1):
        d = copy.deepcopy(c)
        with pytest.raises(Killed):
            reconcile.on_delete(Crashing(d, again), read(d), now=d.clock)
        fs = write(d, reconcile.on_delete(d, read(d), now=d.clock))
        assert fs["status"]["phase"] == "Reverted", (at, again)
        out.append(d)
    return out


def calls_of(run: Callable[[Crashing], Obj], c: MemoryCluster) -> int:
    probe = Crashing(copy.deepcopy(c), at=0)
    run(probe)
    return probe.calls


@pytest.mark.parametrize("ftype", list(FaultType), ids=str)
def test_an_operator_killed_at_any_call_injects_and_reverts_from_the_true_snapshot(ftype: FaultType) -> None:
    """Kill the operator at each call of the injection (after the snapshot, between changes, ...),
    retry with a fresh one: the fault ends in place exactly as without the crash, and the revert
    (itself killed at each call and retried) gives back the original objects."""
    target, params, injected = CASES[ftype]
    fresh = cluster()
    create(fresh, ftype, target, parameters=params)
    before = state(fresh)
    n = calls_of(lambda k: reconcile.on_create(k, read(k.cluster), now=fresh.clock), fresh)
    assert n >= 4  # select, the namespace's Deployments, the snapshot, then the changes
    for at in range(1, n + 1):
        c = copy.deepcopy(fresh)
        with pytest.raises(Killed):
            reconcile.on_create(Crashing(c, at), read(c), now=c.clock)
        fs = write(c, reconcile.on_create(c, read(c), now=c.clock))
        assert fs["status"]["phase"] == "Injected" and injected(c), (at, fs["status"])
        for d in reverted_after_a_kill_at_each_call(c, at):
            assert state(d) == before, at


def test_a_retry_plans_again_from_the_snapshot_not_from_the_faulty_object() -> None:
    c = cluster()
    fs = create(c, "payment-crash", {"name": "payment"})
    # Killed after the change, before its status is written: status holds the snapshot (Pending),
    # the object carries the fault.
    reconcile.on_create(c, fs, now=c.clock)
    assert read(c)["status"]["phase"] == "Pending"
    assert env(dep(c, "payment")) == {"SHOP_FAULT_CRASHED": "true"}
    recorded = read(c)["status"]["targets"][0]["snapshot"]
    assert recorded["env"] == [] and recorded["strategy"] == {"type": "RollingUpdate"}
    fs = write(c, reconcile.on_create(c, read(c), now=c.clock))
    assert fs["status"]["targets"][0]["snapshot"] == recorded


def unavailable() -> None:
    raise ClusterError(503, "the API server is restarting")


@pytest.mark.parametrize("at", [1, 3, 5], ids=["selecting", "snapshotting", "changing"])
def test_a_transient_api_error_is_raised_for_a_retry(at: int) -> None:
    c = cluster()
    fs = create(c, "scale-to-zero", {"name": "product"})
    with pytest.raises(ClusterError) as err:
        reconcile.on_create(Crashing(c, at, unavailable), fs, now=c.clock)
    assert err.value.transient
    fs = write(c, reconcile.on_create(c, read(c), now=c.clock))
    assert fs["status"]["phase"] == "Injected" and dep(c, "product")["spec"]["replicas"] == 0


def test_a_refused_change_rolls_back_what_was_injected_and_fails() -> None:
    c = cluster()
    before = state(c)
    fs = create(c, "scale-to-zero", {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "shop"}}},
                mode="all")
    refused = {"n": 0}
    real_patch = c.patch

    def patch(kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        if kind == "Deployment":
            refused["n"] += 1
            if refused["n"] == 3:
                raise ClusterError(422, "admission webhook said no")
        real_patch(kind, namespace, name, patch_type, body)
    c.patch = patch  # type: ignore[method-assign]
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    st = fs["status"]
    assert st["phase"] == "Failed" and st["reason"] == "InjectionFailed" and "422" in st["message"]
    assert [r["phase"] for r in st["targets"]] == ["Reverted", "Reverted", "Failed", "Failed", "Failed"]
    assert state(c) == before
    assert truth(fs) == {"Selected": "True", "AllInjected": "False", "AllRecovered": "True"}
    assert conds(fs)["AllInjected"]["reason"] == "InjectionFailed"
    assert reconcile.on_delete(c, fs, now=c.clock) == {}  # a Failed scenario holds no change


def test_an_object_gone_before_a_retry_fails_the_scenario() -> None:
    c = cluster()
    fs = create(c, "payment-crash", {"name": "payment"})
    with pytest.raises(Killed):
        reconcile.on_create(Crashing(c, 4), fs, now=c.clock)  # killed after the snapshot
    c.delete("Deployment", NS, "payment")
    st = reconcile.on_create(c, read(c), now=c.clock)
    assert st["phase"] == "Failed" and "disappeared" in st["message"]


def test_an_object_gone_between_the_snapshot_and_the_change_fails_the_scenario() -> None:
    c = cluster()
    fs = create(c, "scale-to-zero", {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "shop"}}},
                mode="all")
    fs = write(c, reconcile.on_create(Crashing(c, 4, lambda: c.delete("Deployment", NS, "order")), fs,
                                      now=c.clock))
    assert fs["status"]["phase"] == "Failed" and "shop/order disappeared" in fs["status"]["message"]
    assert all(dep(c, n)["spec"]["replicas"] == 1 for n in ("gateway", "payment", "product"))


def test_modes_select_some_of_the_matching_objects_the_same_way_each_time() -> None:
    c = cluster()
    fs = create(c, "scale-to-zero", {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "shop"}}},
                mode="fixed", value="2")
    picked = [o["metadata"]["name"] for o in injector.select_targets(c, fs)]
    assert len(picked) == 2 and picked == [o["metadata"]["name"] for o in injector.select_targets(c, fs)]
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    assert sorted(r["name"] for r in fs["status"]["targets"]) == sorted(picked)
    assert [n for n in ("gateway", "order", "payment", "product") if dep(c, n)["spec"]["replicas"] == 0] == \
        sorted(set(picked) - {"loadgen"})


def test_a_target_in_an_allowed_namespace() -> None:
    c = cluster()
    fs = create(c, "scale-to-zero", {"name": "payment", "namespace": "other"})
    fs = write(c, reconcile.on_create(c, fs, allowed_namespaces={"other"}, now=c.clock))
    assert fs["status"]["phase"] == "Injected"
    assert c.objects[("Deployment", "other", "payment")]["spec"]["replicas"] == 0
    assert dep(c, "payment")["spec"]["replicas"] == 1


@pytest.mark.parametrize(("ftype", "spec", "words"), [
    ("payment-crash", {"target": {"name": "no-such-deployment"}}, "no object matches"),
    ("payment-crash", {"target": {"kind": "ConfigMap", "name": "gateway-config"}}, "targets a Deployment"),
    ("bad-gateway-config", {"target": {"name": "gateway"}}, "targets a ConfigMap"),
    ("payment-crash", {"target": {"name": "payment"}, "duration": "soon"}, "invalid duration"),
    ("payment-crash", {"target": {"name": "payment", "namespace": "other"}}, "not the scenario's"),
    ("disk-full", {"target": {"name": "payment"}}, "not implemented"),
    ("product-overload", {"target": {"name": "product"}}, "needs parameters.latencyMs"),
    ("bad-env", {"target": {"name": "product"}}, "needs parameters.env"),
    ("scale-to-zero", {"target": {"selector": {"matchLabels": {"app": "none"}}}, "mode": "all"},
     "no object matches"),
])
def test_a_scenario_that_cannot_be_injected_fails_clearly_and_changes_nothing(
        ftype: str, spec: Obj, words: str) -> None:
    c = cluster()
    before = state(c)
    c.create(KIND, NS, {"metadata": {"name": "bad"}, "spec": {"type": ftype, **spec}})
    writes = len(c.writes)
    fs = write(c, reconcile.on_create(c, read(c, "bad"), now=c.clock), "bad")
    st = fs["status"]
    assert st["phase"] == "Failed" and st["reason"] == "InvalidScenario" and words in st["message"], st
    assert len(c.writes) == writes + 1  # the status only (as kopf writes it)
    assert state(c) == before
    assert st["conditions"][0] == {"type": "Selected", "status": "False", "reason": "InvalidScenario",
                                   "message": st["message"], "lastTransitionTime": c.stamp(),
                                   "observedGeneration": 1}
    assert truth(fs) == {"Selected": "False", "AllInjected": "False", "AllRecovered": "True"}
    assert reconcile.on_create(c, fs, now=c.clock) == {}
    assert reconcile.on_timer(c, fs, now=c.clock) == {} and reconcile.on_delete(c, fs, now=c.clock) == {}


def test_deleting_reverts_at_once_and_an_object_gone_is_reported() -> None:
    c = cluster()
    fs = create(c, "scale-to-zero", {"selector": {"matchLabels": {"app.kubernetes.io/part-of": "shop"}}},
                mode="all")
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    c.delete("Deployment", NS, "order")
    fs = write(c, reconcile.on_delete(c, fs, now=c.clock))
    records = {r["name"]: r for r in fs["status"]["targets"]}
    assert fs["status"]["reason"] == "Deleted"
    assert records["order"]["phase"] == "Failed" and "object gone" in records["order"]["change"]
    assert all(records[n]["phase"] == "Reverted" for n in ("gateway", "payment", "product"))
    assert dep(c, "product")["spec"]["replicas"] == 1
    assert truth(fs)["AllRecovered"] == "True"


def test_the_timer_reverts_a_scenario_without_a_readable_revert_time() -> None:
    assert reconcile.due({"phase": "Injected"})
    assert reconcile.due({"phase": "Injected", "revertAt": "not a time"})
    assert not reconcile.due({"phase": "Reverted", "revertAt": "2000-01-01T00:00:00Z"})
    later = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert not reconcile.due({"phase": "Injected", "revertAt": "2026-01-01T13:00:00+01:00"}, lambda: later
                             - dt.timedelta(seconds=1))
    assert reconcile.due({"phase": "Injected", "revertAt": "2026-01-01T13:00:00+01:00"}, lambda: later)


# -- the conditions, pure ---------------------------------------------------------------------

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def rec(phase: str, name: str = "payment") -> Obj:
    return {"kind": "Deployment", "name": name, "phase": phase}


def test_conditions_follow_the_records() -> None:
    pending = conditions.conditions("Pending", [rec("Pending"), rec("Pending", "order")], generation=2, at=T0)
    assert [(x["type"], x["status"], x["reason"]) for x in pending] == [
        ("Selected", "True", "Selected"), ("AllInjected", "False", "NotInjected"),
        ("AllRecovered", "False", "NotRecovered")]
    assert pending[0]["message"] == "2 selected: Deployment/payment, Deployment/order"
    assert pending[1]["message"] == "0 of 2 injected"
    assert all(x["observedGeneration"] == 2 for x in pending)
    assert all(x["lastTransitionTime"] == "2026-01-01T00:00:00Z" for x in pending)
    half = conditions.conditions("Pending", [rec("Injected"), rec("Pending", "order")], generation=2,
                                 previous=pending, at=T1)
    assert half[1]["message"] == "1 of 2 injected"
    assert half[2]["message"] == "not reverted yet: Deployment/payment, Deployment/order"
    assert [x["lastTransitionTime"] for x in half] == ["2026-01-01T00:00:00Z"] * 3  # no status changed


def test_conditions_keep_their_transition_time_only_while_their_status_stays() -> None:
    injected = conditions.conditions("Injected", [rec("Injected")], generation=1, at=T0)
    reverted = conditions.conditions("Reverted", [rec("Reverted")], generation=3, previous=injected, at=T1)
    by_type = {x["type"]: x for x in reverted}
    assert by_type["Selected"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert by_type["AllInjected"] == {"type": "AllInjected", "status": "False", "reason": "Recovered",
                                      "message": "the fault was reverted",
                                      "lastTransitionTime": "2026-01-01T00:05:00Z", "observedGeneration": 3}
    assert by_type["AllRecovered"]["status"] == "True" and by_type["AllRecovered"]["reason"] == "Recovered"
    assert "observedGeneration" not in conditions.conditions("Pending", [], generation=None, at=T0)[0]


def test_conditions_of_a_scenario_that_never_changed_anything() -> None:
    failed = conditions.conditions("Failed", [], generation=1, reason="InvalidScenario", message="why", at=T0)
    assert [(x["status"], x["reason"], x["message"]) for x in failed] == [
        ("False", "InvalidScenario", "why"), ("False", "InvalidScenario", "why"),
        ("True", "NothingChanged", "no change was made")]
    waiting = conditions.conditions("Pending", [], generation=1, at=T0)
    assert [(x["status"], x["reason"]) for x in waiting] == [
        ("False", "NotSelected"), ("False", "NotInjected"), ("False", "NotRecovered")]
