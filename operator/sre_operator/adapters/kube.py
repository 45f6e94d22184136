"""The Kubernetes adapter (`domain.ports.Cluster`): reads objects as plain dicts, applies patches,
creates and deletes, through the official client with `_preload_content=False`, so everything above
it works on the same camelCase dicts the API server speaks. Every API error leaves here as a
`ClusterError`. Dispatch is one table of kinds, not a chain of ifs."""
from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..domain.ports import ClusterError, Obj, PatchType, owned_by

GROUP = "sre.stratus.dev"
VERSION = "v1alpha1"
CUSTOM_PLURALS = {"Incident": "incidents", "FaultScenario": "faultscenarios"}


def load_config() -> None:
    """In-cluster credentials, else the kubeconfig named by $KUBECONFIG (read now, not at import)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))


def _data(resp: Any) -> Obj:
    return json.loads(resp.data)  # type: ignore[no-any-return]


def _obj(answer: object) -> Obj:
    """A custom-object call's answer (the client types it `object`): the API's JSON object."""
    if not isinstance(answer, dict):
        raise ClusterError(500, f"the API answered a {type(answer).__name__}, not an object")
    return answer


@dataclass(frozen=True)
class _Verbs:
    """The client's functions for one built-in kind (name, namespace, ... order as the client has it)."""
    read: Callable[..., Any]
    list: Callable[..., Any]
    create: Callable[..., Any]
    patch: Callable[..., Any]
    delete: Callable[..., Any]


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        c, a = self.core, self.apps
        self.kinds: dict[str, _Verbs] = {
            "Deployment": _Verbs(a.read_namespaced_deployment, a.list_namespaced_deployment,
                                 a.create_namespaced_deployment, a.patch_namespaced_deployment,
                                 a.delete_namespaced_deployment),
            "ReplicaSet": _Verbs(a.read_namespaced_replica_set, a.list_namespaced_replica_set,
                                 a.create_namespaced_replica_set, a.patch_namespaced_replica_set,
                                 a.delete_namespaced_replica_set),
            "Pod": _Verbs(c.read_namespaced_pod, c.list_namespaced_pod, c.create_namespaced_pod,
                          c.patch_namespaced_pod, c.delete_namespaced_pod),
            "Service": _Verbs(c.read_namespaced_service, c.list_namespaced_service, c.create_namespaced_service,
                              c.patch_namespaced_service, c.delete_namespaced_service),
            "ConfigMap": _Verbs(c.read_namespaced_config_map, c.list_namespaced_config_map,
                                c.create_namespaced_config_map, c.patch_namespaced_config_map,
                                c.delete_namespaced_config_map),
        }

    def _verbs(self, kind: str) -> _Verbs:
        try:
            return self.kinds[kind]
        except KeyError:
            raise ClusterError(400, f"unsupported kind {kind}") from None

    # -- the port ---------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            if kind in CUSTOM_PLURALS:
                return _obj(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                     CUSTOM_PLURALS[kind], name))
            return _data(self._verbs(kind).read(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    def list_objects(self, kind: str, namespace: str, labels: Mapping[str, str] | None = None) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        try:
            if kind in CUSTOM_PLURALS:
                items: list[Obj] = _obj(self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, CUSTOM_PLURALS[kind], label_selector=selector))["items"]
            else:
                items = _data(self._verbs(kind).list(namespace, label_selector=selector,
                                                     _preload_content=False))["items"]
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc
        for it in items:
            it["kind"] = kind
        return items

    def create(self, kind: str, namespace: str, body: Obj) -> Obj:
        try:
            if kind in CUSTOM_PLURALS:
                return _obj(self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                        CUSTOM_PLURALS[kind], body))
            return _data(self._verbs(kind).create(namespace, body, _preload_content=False))
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        """`json` (a list of operations) or `merge` (a JSON merge patch)."""
        if (patch_type not in ("json", "merge") or (patch_type == "json") != isinstance(body, list)
                or not isinstance(body, dict | list)):
            raise ClusterError(400, f"a {patch_type} patch cannot be a {type(body).__name__}")
        content = "application/json-patch+json" if patch_type == "json" else "application/merge-patch+json"
        try:
            if kind in CUSTOM_PLURALS:
                self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, CUSTOM_PLURALS[kind], name, body,
                                                           _content_type=content)
                return
            self._verbs(kind).patch(name, namespace, body, _content_type=content)
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, CUSTOM_PLURALS[kind], name,
                                                              {"status": status})
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            if kind in CUSTOM_PLURALS:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, CUSTOM_PLURALS[kind], name)
            else:
                self._verbs(kind).delete(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    def logs(self, namespace: str, pod: str, container: str, lines: int) -> str:
        try:
            return str(self.core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines,
                                                         _request_timeout=5))
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

    # -- older names, kept while the callers move to the port --------------------------------
    # (`list` shadows the builtin in this class body, hence `builtins.list` below)

    def list(self, kind: str, namespace: str, labels: dict[str, str] | None = None) -> list[Obj]:  # noqa: A003
        return self.list_objects(kind, namespace, labels)

    def list_pods(self, namespace: str, label_selector: str) -> builtins.list[Obj]:
        labels = dict(part.split("=", 1) for part in label_selector.split(",") if part)
        return self.list_objects("Pod", namespace, labels)

    def list_replica_sets(self, namespace: str, deployment: str) -> builtins.list[Obj]:
        return owned_by(self.list_objects("ReplicaSet", namespace), "Deployment", deployment)

    def recent_logs(self, namespace: str, label_selector: str, lines: int = 20) -> builtins.list[str]:
        return recent_logs(self, namespace, label_selector, lines)

    def upsert_config_map(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> None:
        upsert_config_map(self, namespace, name, data, labels)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.delete("Pod", namespace, name)

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self.get(_kind_of(plural), namespace, name)

    def list_custom(self, plural: str, namespace: str) -> builtins.list[Obj]:
        return self.list_objects(_kind_of(plural), namespace)

    def create_custom(self, plural: str, namespace: str, body: Obj) -> Obj:
        return self.create(_kind_of(plural), namespace, body)


def _kind_of(plural: str) -> str:
    return next(k for k, p in CUSTOM_PLURALS.items() if p == plural)


def recent_logs(cluster: Any, namespace: str, label_selector: str, lines: int = 20) -> list[str]:
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


def upsert_config_map(cluster: Any, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> None:
    """Create the ConfigMap, or set its data keys (keys it has and `data` lacks stay)."""
    if cluster.get("ConfigMap", namespace, name) is None:
        cluster.create("ConfigMap", namespace, {"metadata": {"name": name, "labels": labels}, "data": data})
    else:
        cluster.patch("ConfigMap", namespace, name, "merge", {"metadata": {"labels": labels}, "data": data})
