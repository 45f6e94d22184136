"""Inject and revert a FaultScenario: select the targets, record their snapshot in status *before*
changing anything (so a retry after a crash never snapshots the fault itself), apply the change,
and revert from the snapshot. Returns the status fields to write."""
from __future__ import annotations

import datetime as dt

from .. import faults
from ..adapters.kube import Kube

PLURAL = "faultscenarios"


def _ts(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, ok: bool, reason: str, message: str = "") -> dict:
    return {"type": ctype, "status": "True" if ok else "False", "reason": reason, "message": message[:4000],
            "lastTransitionTime": faults.now()}


def select_targets(kube: Kube, scenario: dict) -> list[dict]:
    spec = scenario["spec"]
    target = spec["target"]
    ns = target.get("namespace") or scenario["metadata"]["namespace"]
    kind = target.get("kind", "Deployment")
    if target.get("name"):
        obj = kube.get(kind, ns, target["name"])
        if obj is None:
            return []
        obj["kind"] = kind
        return [obj]
    found = kube.list(kind, ns, (target.get("selector") or {}).get("matchLabels"))
    return faults.pick(found, spec.get("mode", "one"), spec.get("value"), seed=scenario["metadata"]["uid"])


def check_namespace(scenario: dict, allowed: set[str] | None) -> None:
    ns = scenario["spec"]["target"].get("namespace") or scenario["metadata"]["namespace"]
    if ns != scenario["metadata"]["namespace"] and (allowed is None or ns not in allowed):
        raise faults.FaultError(f"target namespace {ns!r} is not the scenario's and not in the operator's "
                                "allowed target namespaces")


def inject(kube: Kube, scenario: dict, allowed_namespaces: set[str] | None = None) -> dict:
    meta, status = scenario["metadata"], scenario.get("status") or {}
    if status.get("phase") in ("Injected", "Reverting", "Reverted", "Failed"):
        return {}  # already done (a replayed handler)
    duration = faults.parse_duration(scenario["spec"].get("duration", "5m"))
    check_namespace(scenario, allowed_namespaces)
    records = status.get("targets")
    if not records:  # first attempt: snapshot, and say so, before any change
        targets = select_targets(kube, scenario)
        ns = scenario["spec"]["target"].get("namespace") or meta["namespace"]
        changes = faults.plan(scenario, targets, kube.list("Deployment", ns))
        records = [{"kind": c.kind, "namespace": c.namespace, "name": c.name, "phase": "Pending",
                    "change": c.change, "snapshot": c.snapshot, "desired": c.desired, "restart": c.restart}
                   for c in changes]
        kube.patch_status(PLURAL, meta["namespace"], meta["name"], {
            "phase": "Pending", "targets": [_public(r) for r in records],
            "observedGeneration": meta.get("generation")})
    else:  # a retry after a crash: the snapshot taken the first time stands
        records = [{**r, "restart": (r.get("snapshot") or {}).get("restart") or []} for r in records]
    at = dt.datetime.now(dt.timezone.utc)
    for r in records:
        if r.get("phase") == "Injected":
            continue
        desired = r.get("desired") or _desired_again(kube, scenario, r)
        current = kube.get(r["kind"], r["namespace"], r["name"])
        if current is None:
            raise faults.FaultError(f"{r['kind']} {r['namespace']}/{r['name']} disappeared")
        kube.patch(r["kind"], r["namespace"], r["name"], *faults.patch_for(r["kind"], current, desired))
        for d in r.get("restart") or []:
            kube.patch("Deployment", r["namespace"], d, "merge", faults.restart_patch(_ts(at)))
        r.update(phase="Injected", injectedAt=_ts(at))
    return {"phase": "Injected", "injectedAt": _ts(at), "revertAt": _ts(at + dt.timedelta(seconds=duration)),
            "targets": [_public(r) for r in records], "reason": "Injected",
            "message": "; ".join(f"{r['kind']} {r['name']}: {r['change']}" for r in records),
            "conditions": [condition("Injected", True, "Injected", "the fault is in place")]}


def _public(r: dict) -> dict:
    """What status keeps of a target record: `desired` is recomputed, `restart` kept in the snapshot."""
    out = {k: v for k, v in r.items() if k in ("kind", "namespace", "name", "phase", "change", "injectedAt",
                                                  "revertedAt")}
    out["snapshot"] = {**r.get("snapshot", {}), "restart": r.get("restart") or []}
    return out


def _desired_again(kube: Kube, scenario: dict, record: dict) -> dict:
    """After a crash between the snapshot and the change: plan again against the snapshot."""
    snap = {k: v for k, v in record["snapshot"].items() if k != "restart"}
    obj = kube.get(record["kind"], record["namespace"], record["name"])
    if obj is None:
        raise faults.FaultError(f"{record['kind']} {record['name']} disappeared")
    obj["kind"] = record["kind"]
    if record["kind"] == "ConfigMap":
        obj["data"] = {**(obj.get("data") or {}), snap["key"]: snap["value"]}
    elif record["kind"] == "Service":
        obj["spec"].update(selector=snap["selector"], ports=snap["ports"])
    else:
        if "replicas" in snap:
            obj["spec"]["replicas"] = snap["replicas"]
        for c in obj["spec"]["template"]["spec"]["containers"]:
            if "env" in snap and c["name"] == snap["container"]:
                c["env"] = snap["env"]
        if "strategy" in snap:
            obj["spec"]["strategy"] = snap["strategy"]
    change = faults.plan(scenario, [obj], [])[0]
    return change.desired


def revert(kube: Kube, scenario: dict, reason: str) -> dict:
    status = scenario.get("status") or {}
    if status.get("phase") not in ("Injected", "Reverting", "Pending"):
        return {}
    at = faults.now()
    records = [dict(r) for r in status.get("targets") or []]
    for r in records:
        snap = dict(r.get("snapshot") or {})
        restart = snap.pop("restart", [])
        current = kube.get(r["kind"], r["namespace"], r["name"])
        if current is None:
            r.update(phase="Failed", change=f"{r.get('change', '')} (object gone: nothing to revert)"[:1024])
            continue
        if snap:
            kube.patch(r["kind"], r["namespace"], r["name"], *faults.patch_for(r["kind"], current, snap))
        for d in restart:
            kube.patch("Deployment", r["namespace"], d, "merge", faults.restart_patch(at))
        r.update(phase="Reverted", revertedAt=at)
    return {"phase": "Reverted", "revertedAt": at, "targets": records, "reason": reason,
            "message": f"reverted from the snapshot ({reason})",
            "conditions": [condition("Injected", False, reason, "the original state is back")]}
