"""What the operator remembers of the application while it is healthy: the known-good record (the
versions a bad change is undone to, and the copies a deleted object is recreated from). Pure: the
previous record, the objects as read and the time in; the new record out. The caller reads the
objects, judges that the shop is healthy, and writes the record back (ConfigMap
`sre-operator-known-good`; its keys are described in `domain.snapshot`).

An object changed in the last `min_age_seconds` is not vouched for yet (its damage may not show in
the rate window's figures), so its previous entry is kept; a Service that reaches no pod is never vouched
for; a Deployment scaled to 0 is not a healthy count. An object that disappears keeps its entries:
they are what it is recreated from."""
from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ..domain.clock import age_seconds
from ..domain.ports import Obj
from ..domain.snapshot import OBJECT_PREFIX, REPLICAS_PREFIX, SERVICE_PREFIX

MIN_AGE_SECONDS = 120.0
# Metadata the API server fills in or owns: a copy without them can be created again.
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                   "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "namespace")
SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")
SERVER_SPEC = {"Service": ("clusterIP", "clusterIPs")}


def last_change(obj: Obj | None) -> str | None:
    """When an object's content last changed: the newest managedFields entry, else its creation."""
    if not obj:
        return None
    times = [str(m["time"]) for m in obj["metadata"].get("managedFields") or []
             if m.get("time") and m.get("subresource") != "status"]
    created = obj["metadata"].get("creationTimestamp")
    return max(times) if times else (str(created) if created else None)


def service_spec(sv: Obj) -> dict[str, Any]:
    """The part of a Service that decides where its traffic goes (what restore-service puts back)."""
    ports = [{k: v for k, v in p.items() if k in ("name", "port", "targetPort", "protocol", "nodePort")}
             for p in sv["spec"].get("ports") or []]
    return {"selector": dict(sv["spec"].get("selector") or {}), "ports": ports}


def healthy_copy(obj: Obj) -> Obj:
    """The object as it can be created again: without status and without what the server fills in
    (uid, resourceVersion, managedFields, creationTimestamp, generation, owner references, a
    Service's cluster IPs, a Deployment's revision). A copy: nothing of `obj` is shared."""
    return copy.deepcopy(_healthy_view(obj))


def _healthy_view(obj: Obj) -> Obj:
    """`healthy_copy` without the deep copy: new dicts where it leaves something out, `obj`'s own
    values everywhere else (to be serialised at once, never changed: `obj` is left as it was)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SERVER_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if out.get("metadata"):
        out["metadata"] = meta
    spec = out.get("spec")
    dropped = SERVER_SPEC.get(str(obj.get("kind")), ())
    if isinstance(spec, dict) and any(key in spec for key in dropped):
        out["spec"] = {k: v for k, v in spec.items() if k not in dropped}
    return out


def object_key(kind: str, name: str) -> str:
    return f"{OBJECT_PREFIX}{kind}.{name}"


def _copy_entry(kind: str, obj: Obj) -> tuple[str, str]:
    body = _healthy_view(obj)
    body["kind"] = kind
    return object_key(kind, obj["metadata"]["name"]), json.dumps(body, sort_keys=True)


def remember(previous: Mapping[str, str], *, config_maps: Sequence[Obj], deployments: Sequence[Obj],
             services: Sequence[Obj], unreachable: Collection[str], now: dt.datetime,
             min_age_seconds: float = MIN_AGE_SECONDS) -> dict[str, str]:
    """The new known-good record from the previous one and the application's objects, read while it
    is healthy (`unreachable`: the names of the Services that reach no pod)."""
    data = dict(previous)

    def too_new(obj: Obj, key: str) -> bool:
        """Changed too recently to vouch for, while an older version is on record (`key`)."""
        age = age_seconds(last_change(obj), now)
        return age is not None and age < min_age_seconds and key in data

    for cm in config_maps:
        name = cm["metadata"]["name"]
        age = age_seconds(last_change(cm), now)
        if age is not None and age < min_age_seconds and any(k.startswith(f"{name}.") for k in data):
            continue
        for key, value in (cm.get("data") or {}).items():
            data[f"{name}.{key}"] = value
        key, value = _copy_entry("ConfigMap", cm)
        data[key] = value
    for d in deployments:
        name, replicas = d["metadata"]["name"], int(d["spec"].get("replicas", 1))
        if replicas <= 0:
            continue
        data[f"{REPLICAS_PREFIX}{name}"] = str(replicas)
        if not too_new(d, object_key("Deployment", name)):
            key, value = _copy_entry("Deployment", d)
            data[key] = value
    for sv in services:
        name = sv["metadata"]["name"]
        if name in unreachable or too_new(sv, f"{SERVICE_PREFIX}{name}"):
            continue
        data[f"{SERVICE_PREFIX}{name}"] = json.dumps(service_spec(sv), sort_keys=True)
        key, value = _copy_entry("Service", sv)
        data[key] = value
    return data


def settled(objects: Iterable[Obj], now: dt.datetime, min_age_seconds: float = MIN_AGE_SECONDS) -> bool:
    """Whether none of `objects` changed within `min_age_seconds` before `now` (nor after it): then
    `remember` decides the same about them at any later time (their age is no longer a reason to
    keep an older entry)."""
    for obj in objects:
        age = age_seconds(last_change(obj), now)
        if age is not None and age < min_age_seconds:
            return False
    return True


def inputs(version: str | None, previous: Mapping[str, str], *, config_maps: Sequence[Obj],
           deployments: Sequence[Obj], services: Sequence[Obj], unreachable: Collection[str],
           min_age_seconds: float = MIN_AGE_SECONDS) -> Hashable | None:
    """What `remember` derives a record from, as a key that is equal only for the same inputs: the
    previous record by its resourceVersion (`version`), each object by kind, uid and
    resourceVersion (the API server gives an object a new one with any change), the Services that
    reach no pod. None where that cannot be told (an object or a record without a version)."""
    if version is None and previous:
        return None
    objects: list[tuple[str, str, str]] = []
    for kind, group in (("ConfigMap", config_maps), ("Deployment", deployments), ("Service", services)):
        for obj in group:
            meta = obj.get("metadata") or {}
            uid, rv = meta.get("uid"), meta.get("resourceVersion")
            if not uid or not rv:
                return None
            objects.append((kind, str(uid), str(rv)))
    return version, tuple(objects), frozenset(unreachable), min_age_seconds
