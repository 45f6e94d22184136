"""One reading of a namespace, taken once per tick through the `Cluster` port: the application's
objects as they are and the operator's known-good record. Decisions read this, never the API.

The known-good record (ConfigMap `sre-operator-known-good`, written while the shop is healthy)
holds, as string values: `<configmap>.<key>` (a config's value), `_replicas.<deployment>` (a replica
count), `_service.<service>` (a Service's selector and ports as JSON) and `_object.<Kind>.<name>` (a
whole Deployment, Service or ConfigMap as JSON, stripped of what the server fills in: what a deleted
object is recreated from); `known_good_*` read them. `detection.known_good` writes them.

The action ledger (ConfigMap `sre-operator-actions`, written by the pipeline as it begins each
action) holds, per `<Kind>.<name>`, when each action on that object began: the blast-radius limits
count from it, so deleting finished Incidents does not reset them (`incident.limits`)."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .ports import Cluster, Obj, owned_by
from .topology import MANAGED_BY, PART_OF

KNOWN_GOOD = "sre-operator-known-good"
ACTION_LEDGER = "sre-operator-actions"
REPLICAS_PREFIX = "_replicas."
SERVICE_PREFIX = "_service."
OBJECT_PREFIX = "_object."
# The kinds a snapshot holds, each listed once per tick (pods and ReplicaSets of the application).
KINDS = ("Deployment", "ReplicaSet", "Pod", "Service", "ConfigMap")
# The kinds the detector's signals and the known-good record read (no ReplicaSets).
DETECTED = ("Deployment", "Pod", "Service", "ConfigMap")


def _owned(objects: dict[str, list[Obj]]) -> dict[str, list[Obj]]:
    """`objects` with only the ReplicaSets its Deployments own (when it holds ReplicaSets)."""
    if "ReplicaSet" not in objects:
        return objects
    names = {d["metadata"]["name"] for d in objects.get("Deployment", [])}
    return {**objects, "ReplicaSet": [r for r in objects["ReplicaSet"]
                                      if any(o.get("kind") == "Deployment" and o.get("name") in names
                                             for o in r["metadata"].get("ownerReferences") or [])]}


class OutOfOrder(ValueError):
    """A cluster-wide list that did not come by namespace, then name."""


def _key(namespace: str) -> str:
    """A namespace's place in the API server's storage order (`<namespace>/<name>` keys)."""
    return f"{namespace}/"


def _grouped(objects: Iterator[Obj], what: str) -> Iterator[tuple[str, list[Obj]]]:
    """(namespace, its objects) for each run of one namespace's objects, in storage order."""
    current: str | None = None
    batch: list[Obj] = []
    for obj in objects:
        ns = str(obj["metadata"].get("namespace") or "")
        if ns != current:
            if current is not None:
                if _key(ns) < _key(current):
                    raise OutOfOrder(f"the list of {what} came out of order: {ns} after {current}")
                yield current, batch
            current, batch = ns, []
        batch.append(obj)
    if current is not None:
        yield current, batch


def _data(record: Obj | None) -> dict[str, str]:
    """The known-good record's data, as strings."""
    return {str(k): str(v) for k, v in ((record or {}).get("data") or {}).items()}


def _version(record: Obj | None) -> str | None:
    """The record's resourceVersion (None: no record, or none given)."""
    version = ((record or {}).get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


@dataclass(frozen=True)
class Snapshot:
    namespace: str
    taken_at: dt.datetime
    objects: dict[str, list[Obj]] = field(default_factory=dict)  # kind → objects
    known_good: dict[str, str] = field(default_factory=dict)
    ledger: dict[str, str] | None = None  # the action ledger's data (None: there is none yet)
    known_good_version: str | None = None  # the known-good record's resourceVersion (None: no record)

    @classmethod
    def read(cls, cluster: Cluster, namespace: str, at: dt.datetime) -> Snapshot:
        """The application's objects (part-of the shop; ReplicaSets: those its Deployments own) and
        the operator's records (known-good, action ledger)."""
        objects = {kind: cluster.list_objects(kind, namespace, None if kind == "ReplicaSet" else PART_OF)
                   for kind in KINDS}
        ledger = cluster.get("ConfigMap", namespace, ACTION_LEDGER)
        record = cluster.get("ConfigMap", namespace, KNOWN_GOOD)
        return cls(namespace, at, _owned(objects), _data(record), None if ledger is None else _data(ledger),
                   _version(record))

    @classmethod
    def read_each(cls, cluster: Cluster, namespaces: list[str], at: dt.datetime,
                  kinds: tuple[str, ...] = DETECTED) -> Iterator[Snapshot]:
        """The snapshot of each of `namespaces` (any order), one at a time, from one cluster-wide
        list per kind and one of the known-good records (found by the operator's label): what the
        detector reads each cycle, a few calls however many namespaces, a page per kind in memory
        rather than every namespace's objects. The lists come in storage order (by namespace,
        then name), so the streams are merged a namespace at a time; a list out of that order
        raises `OutOfOrder` (the caller then reads each namespace on its own)."""
        wanted = set(namespaces)
        streams = {kind: _grouped(cluster.list_all(kind, None if kind == "ReplicaSet" else PART_OF), kind)
                   for kind in kinds}
        streams[KNOWN_GOOD] = _grouped((r for r in cluster.list_all("ConfigMap", MANAGED_BY)
                                        if r["metadata"].get("name") == KNOWN_GOOD), KNOWN_GOOD)
        heads = {kind: next(stream, None) for kind, stream in streams.items()}
        for ns in sorted(wanted, key=_key):  # watched namespaces, in the lists' order
            group: dict[str, list[Obj]] = {}
            for kind in heads:
                while (head := heads[kind]) is not None and _key(head[0]) < _key(ns):  # a namespace not watched
                    heads[kind] = next(streams[kind], None)
                if head is not None and head[0] == ns:
                    group[kind] = head[1]
                    heads[kind] = next(streams[kind], None)
            record = next(iter(group.pop(KNOWN_GOOD, [])), None)
            yield cls(ns, at, _owned({kind: group.get(kind, []) for kind in kinds}), _data(record),
                      known_good_version=_version(record))

    def of(self, kind: str) -> list[Obj]:
        return self.objects.get(kind, [])

    def get(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.of(kind) if o["metadata"]["name"] == name), None)

    def replica_sets_of(self, deployment: str) -> list[Obj]:
        return owned_by(self.of("ReplicaSet"), "Deployment", deployment)

    # -- the known-good record ----------------------------------------------------------------

    def known_good_config(self, config_map: str) -> dict[str, str]:
        prefix = f"{config_map}."
        return {k[len(prefix):]: v for k, v in self.known_good.items() if k.startswith(prefix)}

    def known_good_replicas(self, deployment: str) -> int | None:
        raw = self.known_good.get(f"{REPLICAS_PREFIX}{deployment}", "")
        return int(raw) if raw.isdigit() else None

    def _record(self, key: str) -> dict[str, Any] | None:
        """A JSON object kept in the known-good record (None: none, or not a readable object)."""
        raw = self.known_good.get(key)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def known_good_service(self, name: str) -> dict[str, Any] | None:
        value = self._record(f"{SERVICE_PREFIX}{name}")
        return value if value is not None and "selector" in value and "ports" in value else None

    def known_good_object(self, kind: str, name: str) -> Obj | None:
        """The last healthy copy of a whole object (None: none on record, or unreadable)."""
        value = self._record(f"{OBJECT_PREFIX}{kind}.{name}")
        if value is None or (value.get("metadata") or {}).get("name") != name:
            return None
        return value

    def missing(self, kinds: tuple[str, ...] = ("Deployment", "Service", "ConfigMap")) -> list[tuple[str, str]]:
        """(kind, name) of the objects with a healthy copy on record that the reading lacks."""
        out = []
        for key in sorted(self.known_good):
            kind, _, name = key.removeprefix(OBJECT_PREFIX).partition(".")
            if key.startswith(OBJECT_PREFIX) and kind in kinds and name and self.get(kind, name) is None:
                out.append((kind, name))
        return out
