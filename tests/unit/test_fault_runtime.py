"""`parameters.mode: runtime` of payment-crash and product-overload against the in-memory cluster:
the fault flipped inside every Ready pod's process through the pod proxy (no patch, no rollout, no
label or annotation), the pods recorded before any flip, reverted on the pods still there, and an
operator killed at any call flipping exactly the recorded pods."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from sre_operator.domain.ports import ClusterError, Obj
from sre_operator.faults import reconcile
from tests.fakes.cluster import MemoryCluster, clean_hooks
from tests.unit.test_fault_injection import (
    KIND,
    NS,
    Crashing,
    Killed,
    calls_of,
    cluster,
    create,
    read,
    reverted_after_a_kill_at_each_call,
    state,
    truth,
    write,
)

# type, target Deployment, parameters, each flipped pod's state
RUNTIME: dict[str, tuple[str, Obj, dict[str, Any]]] = {
    "payment-crash": ("payment", {"mode": "runtime"}, {"crashed": True}),
    "product-overload": ("product", {"mode": "runtime", "latencyMs": 900, "cpuMs": 20},
                         {"latency_ms": 900, "cpu_ms": 20}),
}


def shop_with_two_pods(name: str) -> MemoryCluster:
    c = cluster()
    c.patch("Deployment", NS, name, "merge", {"spec": {"replicas": 2}})
    c.controllers()
    return c


def pods(c: MemoryCluster, app: str) -> list[str]:
    return sorted(n for (k, ns, n), o in c.objects.items() if k == "Pod" and ns == NS
                  and o["metadata"]["labels"].get("app.kubernetes.io/name") == app)


def flipped(c: MemoryCluster, pod: str, want: dict[str, Any]) -> bool:
    return c.hook_state(NS, pod) == {**clean_hooks(), **want}


def clean(c: MemoryCluster, pod: str) -> bool:
    return c.hook_state(NS, pod) == clean_hooks()


def pods_meta(c: MemoryCluster) -> dict[str, Obj]:
    """What the operator must never write on a pod: its labels and annotations (and the pod itself)."""
    return {n: {"labels": o["metadata"].get("labels"), "annotations": o["metadata"].get("annotations"),
                "rv": o["metadata"]["resourceVersion"]}
            for (k, _, n), o in c.objects.items() if k == "Pod"}


def workload(c: MemoryCluster) -> dict[str, Any]:
    """Every Deployment's and ReplicaSet's generation and revision, and the objects faults change."""
    revs = {key: (o["metadata"].get("generation"), (o["metadata"].get("annotations") or {}).get(
        "deployment.kubernetes.io/revision")) for key, o in c.objects.items() if key[0] in ("Deployment", "ReplicaSet")}
    return {"revs": revs, "state": state(c)}


@pytest.mark.parametrize("ftype", list(RUNTIME))
def test_runtime_injects_in_every_ready_pod_without_a_rollout_and_reverts(ftype: str) -> None:
    app, params, want = RUNTIME[ftype]
    c = shop_with_two_pods(app)
    before, meta, w0 = workload(c), pods_meta(c), len(c.writes)
    fs = create(c, ftype, {"name": app}, parameters=params)
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    st = fs["status"]
    assert st["phase"] == "Injected", st
    names = pods(c, app)
    assert len(names) == 2 and all(flipped(c, p, want) for p in names)
    [record] = st["targets"]
    assert [(p["name"], p["phase"]) for p in record["pods"]] == [(n, "Injected") for n in names]
    assert record["snapshot"]["runtime"]["port"] == {"payment": 5003, "product": 5002}[app]
    assert "no rollout" in record["change"]
    assert {(p, port) for _, p, port, *_ in c.proxied} == {(n, record["snapshot"]["runtime"]["port"]) for n in names}
    # No patch, no new revision, nothing written on the pods; the other workloads untouched.
    assert workload(c) == before and pods_meta(c) == meta
    assert {(verb, kind) for verb, kind, *_ in c.writes[w0:]} == {("create", KIND), ("patch_status", KIND)}
    assert all(clean(c, p) for other in ("order", "gateway") for p in pods(c, other))
    assert truth(fs) == {"Selected": "True", "AllInjected": "True", "AllRecovered": "False"}
    c.tick(91)
    fs = write(c, reconcile.on_timer(c, fs, now=c.clock))
    assert fs["status"]["phase"] == "Reverted"
    assert all(clean(c, p) for p in names)
    assert [p["phase"] for p in fs["status"]["targets"][0]["pods"]] == ["Reverted", "Reverted"]
    assert truth(fs) == {"Selected": "True", "AllInjected": "False", "AllRecovered": "True"}
    assert workload(c) == before and pods_meta(c) == meta


def test_rollout_stays_the_default_mode() -> None:
    c = cluster()
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "rollout"})
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    assert fs["status"]["phase"] == "Injected" and "pods" not in fs["status"]["targets"][0]
    assert c.objects[("Deployment", NS, "payment")]["metadata"]["generation"] == 2 and not c.proxied


def test_only_ready_pods_that_are_not_terminating_are_flipped() -> None:
    c = cluster()
    c.patch("Deployment", NS, "payment", "merge", {"spec": {"replicas": 3}})
    c.controllers()
    ready, unready, going = pods(c, "payment")
    c.objects[("Pod", NS, unready)]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    c.objects[("Pod", NS, going)]["metadata"]["deletionTimestamp"] = c.stamp()
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    assert [p["name"] for p in fs["status"]["targets"][0]["pods"]] == [ready]
    assert flipped(c, ready, {"crashed": True}) and clean(c, unready) and clean(c, going)


def test_a_pod_replaced_between_inject_and_revert_is_skipped() -> None:
    c = shop_with_two_pods("product")
    fs = create(c, "product-overload", {"name": "product"}, parameters={"mode": "runtime", "latencyMs": 800})
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    gone, kept = pods(c, "product")
    c.delete("Pod", NS, gone)
    c.controllers()  # its ReplicaSet starts a new one: a new process, clean
    [new] = set(pods(c, "product")) - {kept}
    assert clean(c, new)
    c.proxied.clear()
    fs = write(c, reconcile.on_delete(c, fs, now=c.clock))
    assert fs["status"]["phase"] == "Reverted" and fs["status"]["targets"][0]["phase"] == "Reverted"
    assert {p["name"]: p["phase"] for p in fs["status"]["targets"][0]["pods"]} == {gone: "Gone", kept: "Reverted"}
    assert [(p, m, path) for _, p, _, m, path, _ in c.proxied] == [(kept, "DELETE", "/fault")]
    assert clean(c, kept) and clean(c, new)
    assert truth(fs)["AllRecovered"] == "True"


def test_a_pod_that_took_a_recorded_pods_name_is_not_touched() -> None:
    c = cluster()
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    [pod] = pods(c, "payment")
    body = copy.deepcopy(c.objects[("Pod", NS, pod)])
    c.delete("Pod", NS, pod)
    c.create("Pod", NS, {"metadata": {k: body["metadata"][k] for k in ("name", "labels")},
                         "spec": body["spec"], "status": body["status"]})  # same name, new uid
    c.proxied.clear()
    fs = write(c, reconcile.on_delete(c, fs, now=c.clock))
    assert fs["status"]["targets"][0]["pods"][0]["phase"] == "Gone" and not c.proxied


def test_an_operator_killed_at_any_call_flips_exactly_the_recorded_pods() -> None:
    """Killed at each call of the injection, retried by a fresh operator (after a third pod came up,
    which the snapshot does not hold): the same two pods flipped the same way, the new one clean;
    the revert, itself killed at each call and retried, leaves every process clean."""
    fresh = shop_with_two_pods("payment")
    create(fresh, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    first = pods(fresh, "payment")
    n = calls_of(lambda k: reconcile.on_create(k, read(k.cluster), now=fresh.clock), fresh)
    assert n >= 5  # select, the Deployments, the pods, the snapshot, then the flips
    for at in range(1, n + 1):
        c = copy.deepcopy(fresh)
        with pytest.raises(Killed):
            reconcile.on_create(Crashing(c, at), read(c), now=c.clock)
        c.patch("Deployment", NS, "payment", "merge", {"spec": {"replicas": 3}})
        c.controllers()
        [late] = set(pods(c, "payment")) - set(first)
        fs = write(c, reconcile.on_create(c, read(c), now=c.clock))
        recorded = [p["name"] for p in fs["status"]["targets"][0]["pods"]]
        if recorded != first:  # killed before the snapshot: the retry selects afresh, all three
            assert at <= 4 and recorded == sorted([*first, late]), (at, recorded)
        assert fs["status"]["phase"] == "Injected", (at, fs["status"])
        assert all(flipped(c, p, {"crashed": True}) for p in recorded), at
        assert all(clean(c, p) for p in pods(c, "payment") if p not in recorded), at
        for d in reverted_after_a_kill_at_each_call(c, at):
            assert all(clean(d, p) for p in pods(d, "payment")), at


def test_killed_between_two_flips_then_deleted_clears_both() -> None:
    c = shop_with_two_pods("payment")
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    a, b = pods(c, "payment")
    calls = {"n": 0}
    real = c.pod_proxy

    def proxy(namespace: str, pod: str, port: int, method: str, path: str,
              body: Obj | None = None) -> tuple[int, str]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real(namespace, pod, port, method, path, body)
    c.pod_proxy = proxy  # type: ignore[method-assign]
    with pytest.raises(Killed):
        reconcile.on_create(c, fs, now=c.clock)
    c.pod_proxy = real  # type: ignore[method-assign]
    assert read(c)["status"]["phase"] == "Pending" and flipped(c, a, {"crashed": True}) and clean(c, b)
    fs = write(c, reconcile.on_delete(c, read(c), now=c.clock))
    assert fs["status"]["phase"] == "Reverted" and clean(c, a) and clean(c, b)


@pytest.mark.parametrize(("ftype", "params", "words"), [
    ("payment-crash", {"mode": "sideways"},
     "payment-crash has no mode 'sideways' (parameters.mode: rollout or runtime)"),
    ("product-overload", {"mode": "sideways", "latencyMs": 800}, "has no mode 'sideways'"),
    ("scale-to-zero", {"mode": "runtime"}, "scale-to-zero has no mode 'runtime' (parameters.mode: rollout)"),
    ("product-overload", {"mode": "runtime"}, "needs parameters.latencyMs"),
])
def test_bad_parameters_fail_clearly_and_change_nothing(ftype: str, params: Obj, words: str) -> None:
    c = shop_with_two_pods("payment")
    before, meta = workload(c), pods_meta(c)
    target = "payment" if ftype == "payment-crash" else "product"
    create(c, ftype, {"name": target}, name="bad", parameters=params)
    writes = len(c.writes)
    fs = write(c, reconcile.on_create(c, read(c, "bad"), now=c.clock), "bad")
    st = fs["status"]
    assert st["phase"] == "Failed" and st["reason"] == "InvalidScenario" and words in st["message"], st
    assert len(c.writes) == writes + 1 and not c.proxied
    assert workload(c) == before and pods_meta(c) == meta
    assert truth(fs) == {"Selected": "False", "AllInjected": "False", "AllRecovered": "True"}


def test_no_ready_pod_fails_before_anything_changes() -> None:
    c = cluster()
    c.broken.add("payment")
    c.patch("Deployment", NS, "payment", "merge", {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})
    c.controllers()
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    st = reconcile.on_create(c, fs, now=c.clock)
    assert st["phase"] == "Failed" and "no Ready pod" in st["message"] and not c.proxied


def test_hooks_not_mounted_roll_back_the_pods_already_flipped_and_fail() -> None:
    c = shop_with_two_pods("payment")
    a, b = pods(c, "payment")
    c.hookless.add(b)
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    fs = write(c, reconcile.on_create(c, fs, now=c.clock))
    st = fs["status"]
    assert st["phase"] == "Failed" and st["reason"] == "InjectionFailed", st
    assert "answered 404" in st["message"] and "SHOP_FAULT_HOOKS" in st["message"]
    assert clean(c, a) and clean(c, b)
    assert truth(fs)["AllRecovered"] == "True"
    assert reconcile.on_delete(c, fs, now=c.clock) == {}


def test_a_transient_proxy_error_is_raised_for_a_retry() -> None:
    c = cluster()
    fs = create(c, "payment-crash", {"name": "payment"}, parameters={"mode": "runtime"})
    real = c.pod_proxy

    def unreachable(*_a: Any, **_k: Any) -> tuple[int, str]:
        raise ClusterError(503, "error trying to reach service")
    c.pod_proxy = unreachable  # type: ignore[method-assign]
    with pytest.raises(ClusterError) as err:
        reconcile.on_create(c, fs, now=c.clock)
    assert err.value.transient
    c.pod_proxy = real  # type: ignore[method-assign]
    fs = write(c, reconcile.on_create(c, read(c), now=c.clock))
    [pod] = pods(c, "payment")
    assert fs["status"]["phase"] == "Injected" and flipped(c, pod, {"crashed": True})
