"""Pure: what changed in the namespace between two readings, who wrote it, and which changes touched
objects that were not at fault (collateral).

Three sources, each a cross-check of the others:
- the diff of the objects' state (objects.state) between the reading after the fault was injected
  and the reading at the end of the run; an object created or deleted is a change; a Deployment whose
  generation moved although its state is back where it was (changed, then changed back) is one too;
- `managedFields`: the managers that wrote an object's spec/data after the fault (status writes are
  controllers reporting, not changes);
- the Incidents' action records (applied or undone actions: something was written), and pods of a
  workload replaced while its template did not change (a pod deleted).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .objects import Key, Snapshot, diff_paths, state

# Managers that write objects as part of Kubernetes itself, never on anyone's decision.
CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kubelet", "localkube")


@dataclass
class ObjectChange:
    kind: str
    name: str
    what: list[str] = field(default_factory=list)
    managers: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # "diff", "managedFields", "incident", "pods"

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    def as_dict(self) -> dict:
        return asdict(self)


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text).timestamp()


def writers(obj: dict, since: float) -> list[str]:
    """Managers that wrote the object's spec or data at or after `since` (seconds; managedFields times
    have one-second resolution, so `since` is floored)."""
    out = []
    for mf in obj["metadata"].get("managedFields") or []:
        at = parse_time(mf.get("time"))
        if mf.get("subresource") or at is None or at < int(since):
            continue
        if mf.get("manager") not in out:
            out.append(mf.get("manager"))
    return out


def workload_of_pod(pod_name: str) -> str:
    """`product-7c9d8f-abcde` → `product` (a Deployment's pod: ReplicaSet hash, then pod suffix)."""
    return pod_name.rsplit("-", 2)[0]


def _object_change(a: dict | None, b: dict | None, key: Key,
                   since: float) -> list[tuple[str, str, list[str]]]:
    """How one object changed between two readings: (what, seen by, writers) entries."""
    if a is None:
        return [("created", "diff", writers(b, since))]
    if b is None:
        return [("deleted", "diff", [])]
    out: list[tuple[str, str, list[str]]] = []
    if a["metadata"].get("uid") != b["metadata"].get("uid"):
        out.append(("deleted and created again", "diff", writers(b, since)))
    paths = diff_paths(state(a), state(b))
    out += [(p, "diff", writers(b, since)) for p in paths]
    if paths:
        return out
    if key[0] == "Deployment" and b["metadata"].get("generation", 0) > a["metadata"].get("generation", 0):
        out.append(("changed and changed back (generation moved)", "diff", writers(b, since)))
    who = [m for m in writers(b, since) if not m.startswith(CONTROLLERS)]
    if who and b["metadata"].get("resourceVersion") != a["metadata"].get("resourceVersion"):
        out.append(("rewritten (same state)", "managedFields", who))
    return out


def object_changes(before: Snapshot, after: Snapshot, since: float) -> list[ObjectChange]:
    found: dict[Key, ObjectChange] = {}

    def note(key: Key, what: str, source: str, managers: Iterable[str] = ()) -> None:
        ch = found.setdefault(key, ObjectChange(*key))
        if what and what not in ch.what:
            ch.what.append(what)
        if source not in ch.sources:
            ch.sources.append(source)
        for m in managers:
            if m not in ch.managers:
                ch.managers.append(m)

    for key in sorted(set(before.objects) | set(after.objects)):
        for what, source, managers in _object_change(before.objects.get(key), after.objects.get(key), key, since):
            note(key, what, source, managers)

    # Pods replaced while their Deployment's template stayed the same: someone deleted them.
    def pod_uids(snap: Snapshot) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for p in snap.pods:
            out.setdefault(workload_of_pod(p["metadata"]["name"]), set()).add(p["metadata"]["uid"])
        return out

    old, new = pod_uids(before), pod_uids(after)
    for workload, uids in sorted(old.items()):
        key = ("Deployment", workload)
        if key in found or key not in after.objects:
            continue
        gone = uids - new.get(workload, set())
        if gone:
            note(key, f"{len(gone)} pod(s) replaced without a template change", "pods")
    return sorted(found.values(), key=lambda c: c.key)


def incident_actions(incidents: Iterable[dict]) -> list[dict]:
    """Every action an Incident records as done (applied, undone, or pending: it may have been
    written), with its target as a (kind, name) of the namespace's objects (a pod → its Deployment)."""
    out = []
    for inc in incidents:
        for a in (inc.get("status") or {}).get("actions") or []:
            if a.get("outcome") in ("failed", "skipped"):
                continue
            target = a.get("target") or {}
            kind, name = target.get("kind", ""), target.get("name", "")
            if kind == "Pod":
                kind, name = "Deployment", workload_of_pod(name)
            out.append({"incident": inc["metadata"]["name"], "type": a.get("type"), "kind": kind,
                        "name": name, "outcome": a.get("outcome")})
    return out


def merge_actions(changes: list[ObjectChange], actions: Iterable[dict]) -> list[ObjectChange]:
    """The diff's changes plus the Incidents' actions (an action on an object the diff saw unchanged
    is still a change: done and undone, or a restart)."""
    by_key = {c.key: c for c in changes}
    for a in actions:
        key = (a["kind"], a["name"])
        ch = by_key.get(key)
        if ch is None:
            ch = by_key[key] = ObjectChange(*key)
        what = f"{a['type']} ({a['outcome']}, {a['incident']})"
        if what not in ch.what:
            ch.what.append(what)
        if "incident" not in ch.sources:
            ch.sources.append("incident")
    return sorted(by_key.values(), key=lambda c: c.key)


def collateral(changes: Iterable[ObjectChange], touchable: set[Key]) -> list[ObjectChange]:
    """Changes to objects that were neither at fault nor allowed to change to heal it."""
    return [c for c in changes if c.key not in touchable]
