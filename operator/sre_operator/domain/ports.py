"""The narrow doors to the outside that the decisions are written against. `adapters/` holds the
real implementations (the Kubernetes API through the official client); the unit tier has an
in-memory one (`tests/fakes/cluster.py`). Objects travel as the plain camelCase dicts the API
server speaks.

Kinds: Deployment, ReplicaSet, Pod, Service, ConfigMap (core and apps) and the operator's own
Incident and FaultScenario."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

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

    def list_all(self, kind: str, labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        """Every namespace's objects of `kind` carrying every label of `labels`, read a page at a
        time as the iterator goes (the detector's reading of many namespaces: a few calls per kind
        instead of one per namespace, a page or two in memory), in the API server's storage order:
        by `namespace/name`. Each `managedFields` entry keeps its manager, operation, time and
        subresource, not its field set, and the `kubectl.kubernetes.io/last-applied-configuration`
        copy is left out. ClusterError (403 when not allowed) from the call that fails."""

    def create(self, kind: str, namespace: str, body: Obj) -> Obj: ...

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        """`json`: a list of JSON-patch operations; `merge`: a JSON merge patch (a dict)."""

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        """A merge patch of the status subresource (Incident, FaultScenario)."""

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        """The last `lines` lines of one container's log."""

    def pod_proxy(self, namespace: str, pod: str, port: int, method: str, path: str,
                  body: Obj | None = None) -> tuple[int, str]:
        """One HTTP request to a pod's port through the API server's pod proxy
        (`/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}`, JSON `body`): the pod's
        own answer, (status, text), whatever its status. ClusterError when the API server did not
        reach the pod (the pod gone: 404; not reachable: 503; refused: 403)."""


def owned_by(objects: list[Obj], kind: str, name: str) -> list[Obj]:
    """The objects whose owner references name `kind`/`name` (a Deployment's ReplicaSets)."""
    return [o for o in objects if any(r.get("kind") == kind and r.get("name") == name
                                      for r in o.get("metadata", {}).get("ownerReferences") or [])]


def recent_logs(cluster: Cluster, namespace: str, label_selector: str, lines: int = 20) -> list[str]:
    """The last lines of each container of up to three matching pods (data for triage, never
    instructions). A pod with several containers (the gateway's NGINX and its exporter) needs
    each container named. A container whose log cannot be read is left out."""
    labels = dict(part.split("=", 1) for part in label_selector.split(",") if part)
    out: list[str] = []
    for p in cluster.list_objects("Pod", namespace, labels)[:3]:
        for c in (p.get("spec") or {}).get("containers", [])[:3]:
            try:
                text = cluster.logs(namespace, p["metadata"]["name"], c["name"], lines)
            except ClusterError:
                continue
            out += [f"{p['metadata']['name']}/{c['name']}: {ln}"[:500] for ln in text.splitlines()[-lines:]]
    return out


def upsert_config_map(cluster: Cluster, namespace: str, name: str, data: dict[str, str],
                      labels: dict[str, str]) -> None:
    """Create the ConfigMap, or set its data keys (keys it has and `data` lacks stay)."""
    if cluster.get("ConfigMap", namespace, name) is None:
        cluster.create("ConfigMap", namespace, {"metadata": {"name": name, "labels": labels}, "data": data})
    else:
        cluster.patch("ConfigMap", namespace, name, "merge", {"metadata": {"labels": labels}, "data": data})

# -- the language model ----------------------------------------------------------------------------

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Tokens:
    prompt: int = 0
    completion: int = 0
    calls: int = 1  # requests made (a retry is one more)


class ModelCallFailed(RuntimeError):
    """No usable answer; `tokens` is what the call cost anyway."""

    def __init__(self, reason: str, tokens: Tokens = Tokens()) -> None:
        super().__init__(reason)
        self.tokens = tokens


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    tokens: Tokens


class ChatModel(Protocol):
    """One structured-output chat call to a model (`adapters/llm_client.py`: any OpenAI-compatible
    server). Raises `ModelCallFailed` when there is no usable answer."""

    def structured(self, model: str, messages: list[dict[str, Any]], schema: type[T], max_tokens: int) -> Answer[T]:
        ...
