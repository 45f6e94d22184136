"""Inject and revert a FaultScenario through the `Cluster` port: select the targets, record their
snapshot in status *before* changing anything (so a retry after a crash never snapshots the fault
itself), apply the change, and revert from the snapshot. Each returns the status patch to write.

A failure after the snapshot that retrying cannot fix (an object gone, the API server refusing)
reverts what was already changed before the scenario is marked Failed: a Failed scenario has no
change in place. A transient API error is raised as it is (`ClusterError.transient`), to be
retried: the retry plans again from the recorded snapshot.

A runtime change (`parameters.mode: runtime`) patches nothing: its record lists the Ready pods of
the Deployment (the snapshot: which pods), written before any of them is flipped, then each pod's
process is flipped through its fault hook over the API server's pod proxy. A retry flips the same
recorded pods with the same calls (the hooks set a state, so a second call changes nothing), never a
pod that appeared since. Reverting calls the clearing hook on the recorded pods that still exist (a
pod replaced since starts clean). No label or annotation is written on the pods.

A record in status is not an order: whoever may write `faultscenarios/status` could point one at
any object in any namespace, or give it a snapshot of their choosing. Each record carries the
operator's seal (`domain.seal`) over what it says (object, namespace, snapshot, pods), made when the
injector writes it; a record whose seal does not verify, or outside the scenario's namespace, is
never written back (it is marked Failed and the status says why)."""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from ..domain import clock
from ..domain.ports import Cluster, ClusterError, Obj
from ..domain.seal import PROCESS_KEY, seal, verify
from ..domain.vocabulary import FaultPhase, HookState, SelectorMode
from . import changes, parse_duration, plan, spec_of
from .base import Change, FaultError, Fields, RuntimeFault
from .conditions import MESSAGE_MAX, conditions

KIND = "FaultScenario"
DEFAULT_DURATION = "5m"
TAMPERED = "RecordTampered"  # the reason when a record in status is not as the injector wrote it
Clock = Callable[[], dt.datetime]
# Phases after which a replayed create handler does nothing.
DONE = frozenset({FaultPhase.INJECTED, FaultPhase.REVERTING, FaultPhase.REVERTED, FaultPhase.FAILED})
# Phases in which some change of the scenario may be in place.
REVERTIBLE = frozenset({FaultPhase.PENDING, FaultPhase.INJECTED, FaultPhase.REVERTING})


def target_namespace(scenario: Obj) -> str:
    return str(scenario["spec"]["target"].get("namespace") or scenario["metadata"]["namespace"])


def check_namespace(scenario: Obj, allowed: Collection[str]) -> None:
    """A scenario acts in its own namespace, or in one the operator is allowed to target."""
    ns = target_namespace(scenario)
    if ns != scenario["metadata"]["namespace"] and ns not in allowed:
        raise FaultError(f"target namespace {ns!r} is not the scenario's and not in the operator's "
                         "allowed target namespaces")


def select_targets(cluster: Cluster, scenario: Obj) -> list[Obj]:
    """The objects the scenario hits: the named one, or those its selector matches, picked by mode."""
    spec = scenario["spec"]
    target, ns = spec["target"], target_namespace(scenario)
    kind = str(target.get("kind") or "Deployment")
    if kind not in spec_of(spec["type"]).kinds:  # asked before the API: an unknown kind is the user's error
        raise FaultError(f"{spec['type']} targets a {spec_of(spec['type']).kinds_text()} "
                         f"(target.kind: {spec_of(spec['type']).kinds_text()})")
    if target.get("name"):
        obj = cluster.get(kind, ns, target["name"])
        found = [] if obj is None else [obj]
    else:
        found = cluster.list_objects(kind, ns, (target.get("selector") or {}).get("matchLabels"))
        found = changes.pick(found, spec.get("mode", SelectorMode.ONE), spec.get("value"),
                             seed=str(scenario["metadata"].get("uid", "")))
    for obj in found:
        obj["kind"] = kind
    return found


def _status(scenario: Obj, phase: FaultPhase, records: list[Obj], at: dt.datetime, reason: str,
            message: str, **extra: Any) -> Obj:
    """A status patch: the phase, the records, their conditions (and `extra` fields)."""
    meta, previous = scenario["metadata"], (scenario.get("status") or {}).get("conditions") or []
    return {"phase": str(phase), "targets": records, "reason": reason, "message": message[:MESSAGE_MAX],
            "observedGeneration": meta.get("generation"), **extra,
            "conditions": conditions(phase, records, generation=meta.get("generation"), previous=previous,
                                     reason=reason, message=message, at=at)}


def failed(scenario: Obj, message: str, at: dt.datetime, records: list[Obj] | None = None,
           reason: str = "InvalidScenario") -> Obj:
    return _status(scenario, FaultPhase.FAILED, records or [], at, reason, message)


def _record(cluster: Cluster, c: Change) -> Obj:
    out: Obj = {"kind": c.kind, "namespace": c.namespace, "name": c.name, "phase": str(FaultPhase.PENDING),
                "change": c.change[:1024], "snapshot": {**c.snapshot, "restart": list(c.restart)}}
    if c.runtime is not None:
        rt = c.runtime
        out["snapshot"]["runtime"] = {"port": rt.port, "inject": [h.as_dict() for h in rt.inject],
                                      "revert": [h.as_dict() for h in rt.revert]}
        out["pods"] = _pods_to_flip(cluster, c, rt)
    return out


def _sealed(scenario: Obj, record: Obj) -> Obj:
    """What a record's seal covers: the object, its namespace, the snapshot and which pods."""
    return {"scenario": scenario["metadata"].get("uid", ""), "kind": record.get("kind"),
            "namespace": record.get("namespace"), "name": record.get("name"), "snapshot": record.get("snapshot"),
            "pods": [{"name": p.get("name"), "uid": p.get("uid")} for p in record.get("pods") or []]}


def _seal(scenario: Obj, record: Obj, key: bytes) -> Obj:
    return {**record, "seal": seal(key, _sealed(scenario, record))}


def untrusted(scenario: Obj, record: Obj, key: bytes, allowed: Collection[str]) -> str | None:
    """Why a record in status is not to be written back (None: the injector wrote it as it is)."""
    if not verify(key, _sealed(scenario, record), record.get("seal")):
        return "not reverted: the record is not as the injector wrote it"
    if record.get("namespace") != target_namespace(scenario):
        return f"not reverted: namespace {record.get('namespace')!r} is not the scenario's target namespace"
    try:
        check_namespace(scenario, allowed)
    except FaultError as exc:
        return f"not reverted: {exc}"
    return None


def _refuse(record: Obj, why: str) -> None:
    record.update(phase=str(FaultPhase.FAILED), change=f"{str(record.get('change', ''))[:600]} ({why})"[:1024])


def _fields(record: Obj) -> tuple[Fields, list[str]]:
    """A record's snapshot fields and the Deployments to roll with them."""
    snap = dict(record.get("snapshot") or {})
    return snap, list(snap.pop("restart", None) or [])


def _desired_again(cluster: Cluster, scenario: Obj, record: Obj) -> Fields:
    """After a crash between the snapshot and the change: plan again from the snapshot, never from
    the object as it is now (it may already carry the fault)."""
    obj = cluster.get(record["kind"], record["namespace"], record["name"])
    if obj is None:
        raise FaultError(f"{record['kind']} {record['namespace']}/{record['name']} disappeared")
    obj["kind"] = record["kind"]
    snap, _ = _fields(record)
    original = changes.with_fields(record["kind"], obj, snap)
    [change] = plan(scenario, [original], [])
    return change.desired


def _write(cluster: Cluster, record: Obj, fields: Fields, restart: list[str], at: dt.datetime) -> bool:
    """Write `fields` onto the record's object and roll `restart`; False when the object is gone."""
    current = cluster.get(record["kind"], record["namespace"], record["name"])
    if current is None:
        return False
    if fields:
        cluster.patch(record["kind"], record["namespace"], record["name"],
                      *changes.patch_for(record["kind"], current, fields))
    for name in restart:
        cluster.patch("Deployment", record["namespace"], name, "merge",
                      changes.restart_patch(clock.stamp(at)))
    return True


def _inject_record(cluster: Cluster, record: Obj, fields: Fields, at: dt.datetime) -> None:
    """Write one record's change and mark it Injected; FaultError when its object is gone."""
    if not _write(cluster, record, fields, _fields(record)[1], at):
        raise FaultError(f"{record['kind']} {record['namespace']}/{record['name']} disappeared")
    record.update(phase=str(FaultPhase.INJECTED), injectedAt=clock.stamp(at))


# -- runtime changes: flipped in the running processes, through the pod proxy -------------------

def _runtime(record: Obj) -> Obj | None:
    """A runtime record's hook calls ({"port", "inject", "revert"}), None for a patch record."""
    rt = (record.get("snapshot") or {}).get("runtime")
    return rt if isinstance(rt, dict) else None


def _ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _pods_to_flip(cluster: Cluster, c: Change, rt: RuntimeFault) -> list[Obj]:
    """The Deployment's Ready, not terminating pods, as per-pod records (Pending)."""
    pods = [p for p in cluster.list_objects("Pod", c.namespace, rt.selector) if _ready(p)]
    if not pods:
        raise FaultError(f"Deployment {c.namespace}/{c.name} has no Ready pod to flip at runtime")
    return [{"name": p["metadata"]["name"], "uid": p["metadata"].get("uid", ""), "phase": str(HookState.PENDING)}
            for p in sorted(pods, key=lambda p: str(p["metadata"]["name"]))]


def _still_there(cluster: Cluster, namespace: str, pod: Obj) -> bool:
    """The recorded pod exists, and is the same pod (not a successor that took its name)."""
    current = cluster.get("Pod", namespace, pod["name"])
    return current is not None and current["metadata"].get("uid", "") == pod.get("uid", "")


def _call(cluster: Cluster, namespace: str, pod: str, port: int, call: Obj) -> bool:
    """One fault-hook call on one pod; False when the pod is gone (the API server's 404),
    FaultError when the hook refused (or is not mounted)."""
    try:
        code, text = cluster.pod_proxy(namespace, pod, port, str(call["method"]), str(call["path"]), call.get("body"))
    except ClusterError as exc:
        if exc.status == 404:
            return False
        raise
    if not 200 <= code < 300:
        hint = " (fault hooks not mounted? the shop needs SHOP_FAULT_HOOKS=true)" if code == 404 else ""
        raise FaultError(f"pod {pod}: {call['method']} {call['path']} answered {code}{hint}: {text[:200]}")
    return True


def _calls(cluster: Cluster, record: Obj, pod: Obj, calls: list[Obj]) -> bool:
    """Make `calls` on a recorded pod; False when it is gone (before or during them)."""
    port = int((_runtime(record) or {})["port"])
    ns = record["namespace"]
    return _still_there(cluster, ns, pod) and all(_call(cluster, ns, pod["name"], port, c) for c in calls)


def _flip(cluster: Cluster, record: Obj, at: dt.datetime) -> None:
    """Flip every recorded pod that is still there; FaultError when none was."""
    calls = list((_runtime(record) or {}).get("inject") or [])
    for pod in record.get("pods") or []:
        if pod.get("phase") == HookState.PENDING:
            pod["phase"] = str(HookState.INJECTED if _calls(cluster, record, pod, calls) else HookState.GONE)
    if not any(p.get("phase") == HookState.INJECTED for p in record.get("pods") or []):
        raise FaultError(f"no pod of {record['kind']} {record['namespace']}/{record['name']} left to flip "
                         "(all replaced since they were selected)")
    record.update(phase=str(FaultPhase.INJECTED), injectedAt=clock.stamp(at))


def _unflip(cluster: Cluster, record: Obj) -> str | None:
    """Clear the fault on every recorded pod that may carry it (Injected, or Pending: an attempt
    killed between its flips) and still exists; why not, when a hook refused."""
    calls = list((_runtime(record) or {}).get("revert") or [])
    refused = []
    for pod in record.get("pods") or []:
        if pod.get("phase") not in (HookState.INJECTED, HookState.PENDING):
            continue
        try:
            pod["phase"] = str(HookState.REVERTED if _calls(cluster, record, pod, calls) else HookState.GONE)
        except FaultError as exc:
            pod["phase"] = str(HookState.FAILED)
            refused.append(str(exc))
    return f"not cleared: {'; '.join(refused)}" if refused else None


def _revert_record(cluster: Cluster, record: Obj, at: dt.datetime) -> str | None:
    """Put the record's object back (a runtime record: clear its pods); why not, when it could not."""
    if _runtime(record) is not None:
        return _unflip(cluster, record)
    snap, restart = _fields(record)
    return None if _write(cluster, record, snap, restart, at) else "object gone: nothing to revert"


def inject(cluster: Cluster, scenario: Obj, allowed_namespaces: Collection[str] = frozenset(),
           now: Clock = clock.now, key: bytes = PROCESS_KEY) -> Obj:
    """Inject the scenario; the status patch to write ({} when it is past injecting). Raises
    FaultError, before any change, when the scenario is invalid; ClusterError when transient."""
    meta, status = scenario["metadata"], scenario.get("status") or {}
    if status.get("phase") in DONE:
        return {}  # a replayed handler
    spec_of(scenario["spec"]["type"])
    duration = _duration(scenario)
    check_namespace(scenario, allowed_namespaces)
    records: list[Obj] = [copy.deepcopy(dict(r)) for r in status.get("targets") or []]
    desired: dict[int, Fields] = {}
    if not records:  # first attempt: snapshot, and say so, before any change
        targets = select_targets(cluster, scenario)
        planned = plan(scenario, targets, cluster.list_objects("Deployment", target_namespace(scenario)))
        records = [_seal(scenario, _record(cluster, c), key) for c in planned]
        desired = {i: c.desired for i, c in enumerate(planned)}
        snapshot = _status(scenario, FaultPhase.PENDING, records, now(), "Selected", "snapshot recorded")
        cluster.patch_status(KIND, meta["namespace"], meta["name"], snapshot)
        scenario = {**scenario, "status": {**status, **snapshot}}
    at = now()
    refused = [(r, why) for r in records if (why := untrusted(scenario, r, key, allowed_namespaces))]
    if refused:
        for r, why in refused:
            _refuse(r, why)
        return _roll_back(cluster, scenario, records, f"{len(refused)} target record(s) not as the injector "
                          "wrote them: nothing injected", at, reason=TAMPERED)
    try:
        for i, r in enumerate(records):  # all Pending: status holds records as snapshotted or as finished
            if _runtime(r) is not None:
                _flip(cluster, r, at)
            else:
                _inject_record(cluster, r, desired.get(i) or _desired_again(cluster, scenario, r), at)
    except (FaultError, ClusterError) as exc:
        if isinstance(exc, ClusterError) and exc.transient:
            raise
        return _roll_back(cluster, scenario, records, f"injection failed: {exc}", at)
    message = "; ".join(f"{r['kind']} {r['name']}: {r['change']}" for r in records)
    return _status(scenario, FaultPhase.INJECTED, records, at, "Injected", message,
                   injectedAt=clock.stamp(at), revertAt=clock.stamp(at + dt.timedelta(seconds=duration)))


def _duration(scenario: Obj) -> float:
    return parse_duration(str(scenario["spec"].get("duration") or DEFAULT_DURATION))


def _roll_back(cluster: Cluster, scenario: Obj, records: list[Obj], message: str, at: dt.datetime,
               reason: str = "InjectionFailed") -> Obj:
    """Revert the records already injected (never one refused as untrusted, already Failed), and
    mark the scenario Failed."""
    for r in records:
        # A runtime record may have flipped some of its pods before it failed: cleared as well.
        if r.get("phase") == FaultPhase.INJECTED or _runtime(r) is not None:
            why = _revert_record(cluster, r, at)
            r.update(phase=str(FaultPhase.REVERTED if why is None else FaultPhase.FAILED), revertedAt=clock.stamp(at))
            if why is not None:
                r["change"] = f"{r.get('change', '')} ({why})"[:1024]
        elif r.get("phase") == FaultPhase.PENDING:
            r.update(phase=str(FaultPhase.FAILED))
    return failed(scenario, message, at, records, reason=reason)


def revert(cluster: Cluster, scenario: Obj, reason: str, now: Clock = clock.now, key: bytes = PROCESS_KEY,
           allowed_namespaces: Collection[str] = frozenset()) -> Obj:
    """Write every target's snapshot back (only records the injector wrote, in the scenario's target
    namespace); the status patch ({} when nothing may be in place)."""
    status = scenario.get("status") or {}
    if status.get("phase") not in REVERTIBLE:
        return {}
    at = now()
    records = [copy.deepcopy(dict(r)) for r in status.get("targets") or []]
    refused = 0
    for r in records:
        why = untrusted(scenario, r, key, allowed_namespaces)
        if why is not None:
            refused += 1
            _refuse(r, why)
            continue
        why = _revert_record(cluster, r, at)
        if why is None:
            r.update(phase=str(FaultPhase.REVERTED), revertedAt=clock.stamp(at))
        else:
            r.update(phase=str(FaultPhase.FAILED), change=f"{r.get('change', '')} ({why})"[:1024])
    if refused:
        return _status(scenario, FaultPhase.REVERTED, records, at, TAMPERED,
                       f"{refused} target record(s) not as the injector wrote them were not reverted (changed by "
                       f"someone else, or by an operator with another SRE_OPERATOR_RECORD_KEY); the rest reverted "
                       f"from the snapshot ({reason})", revertedAt=clock.stamp(at))
    return _status(scenario, FaultPhase.REVERTED, records, at, reason,
                   f"reverted from the snapshot ({reason})", revertedAt=clock.stamp(at))
