"""The narrow doors to the outside that the decisions are written against. `adapters/` holds the
real implementations (the Kubernetes API through the official client); the unit tier has an
in-memory one (`tests/fakes/cluster.py`). Objects travel as the plain camelCase dicts the API
server speaks.

Kinds: Deployment, ReplicaSet, Pod, Service, ConfigMap (core and apps) and the operator's own
Incident and FaultScenario."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

PatchType = Literal["json", "merge"]
Obj = dict[str, Any]


class ClusterError(Exception):
    """The API server refused or failed a request (`status`: its HTTP status; 0: not reached)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

    @property
    def transient(self) -> bool:
        """Worth retrying: a conflict, throttling, the server failing or not reached."""
        return self.status in (0, 409, 429) or self.status >= 500


class Cluster(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The object, or None when it does not exist."""

    def list_objects(self, kind: str, namespace: str, labels: Mapping[str, str] | None = None) -> list[Obj]:
        """The namespace's objects of `kind` carrying every label of `labels`."""

    def create(self, kind: str, namespace: str, body: Obj) -> Obj: ...

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        """`json`: a list of JSON-patch operations; `merge`: a JSON merge patch (a dict)."""

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        """A merge patch of the status subresource (Incident, FaultScenario)."""

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        """The last `lines` lines of one container's log."""


def owned_by(objects: list[Obj], kind: str, name: str) -> list[Obj]:
    """The objects whose owner references name `kind`/`name` (a Deployment's ReplicaSets)."""
    return [o for o in objects if any(r.get("kind") == kind and r.get("name") == name
                                      for r in o.get("metadata", {}).get("ownerReferences") or [])]
