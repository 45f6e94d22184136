"""The Kubernetes adapter (`domain.ports.Cluster`): reads objects as plain dicts, applies patches,
creates and deletes, through the official client with `_preload_content=False`, so everything above
it works on the same camelCase dicts the API server speaks. Every API error leaves here as a
`ClusterError`. Dispatch is one table of kinds, not a chain of ifs."""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..domain.ports import ClusterError, Obj, PatchType

GROUP = "sre.stratus.dev"
VERSION = "v1alpha1"
CUSTOM_PLURALS = {"Incident": "incidents", "FaultScenario": "faultscenarios"}
PROXY_TIMEOUT_S = 10
PAGE = 250  # objects a page of a cluster-wide list: one page per kind in memory at a time (and the next one's bytes)
# Threads reading the next pages of cluster-wide lists (the detector reads five lists at once): two
# keep the API server busy while the detector decides; each more holds its own malloc arena of page
# buffers (some 15 MiB of RSS each at 1,000 namespaces, bench/cycle_profile.py).
READERS = 2
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def load_config() -> None:
    """In-cluster credentials, else the kubeconfig named by $KUBECONFIG (read now, not at import)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))


def current_namespace() -> str:
    """The namespace a person's kubeconfig context names (in a pod: its own), else `default`."""
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as fh:
            return fh.read().strip() or "default"
    except OSError:
        pass
    try:
        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
    except (config.ConfigException, OSError):
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


def namespaces(kube: Kube) -> list[str]:
    """Every namespace's name (for `--all-namespaces`)."""
    try:
        items = _data(kube.core.list_namespace(_preload_content=False))["items"]
    except ApiException as exc:
        raise ClusterError(exc.status or 0, str(exc.reason)) from exc
    return sorted(str(n["metadata"]["name"]) for n in items)


def _data(resp: Any) -> Obj:
    return _decoded(resp.data)


def _decoded(raw: bytes) -> Obj:
    """An answer's JSON, decoded by orjson (the detector decodes every watched object each cycle:
    orjson makes the same dicts in less time), or by `json` where orjson refuses it (it is
    stricter: a lone surrogate escape, NaN, an integer past 64 bits), so nothing `json` reads is refused."""
    try:
        return orjson.loads(raw)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        return json.loads(raw)  # type: ignore[no-any-return]


def _api_status(text: str) -> Obj | None:
    """The API server's own `Status` answer (it did not reach the pod: not found, forbidden,
    unreachable), told from the pod's answer, which the proxy passes through as it is."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("apiVersion") == "v1":
        return doc
    return None


def _obj(answer: object) -> Obj:
    """A custom-object call's answer (the client types it `object`): the API's JSON object."""
    if not isinstance(answer, dict):
        raise ClusterError(500, f"the API answered a {type(answer).__name__}, not an object")
    return answer


def _lean(obj: Obj, kind: str) -> Obj:
    """`obj` as `list_all` hands it out (see `domain.ports.Cluster.list_all`)."""
    obj["kind"] = kind
    meta = obj.get("metadata") or {}
    if isinstance(meta.get("managedFields"), list):
        meta["managedFields"] = [{k: m[k] for k in ("manager", "operation", "time", "subresource") if k in m}
                                 for m in meta["managedFields"] if isinstance(m, dict)]
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
    return obj


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
        self._readers: ThreadPoolExecutor | None = None  # made on the first cluster-wide list
        self._readers_made = threading.Lock()
        c, a = self.core, self.apps
        self.all_namespaces: dict[str, Callable[..., Any]] = {
            "Deployment": a.list_deployment_for_all_namespaces, "ReplicaSet": a.list_replica_set_for_all_namespaces,
            "Pod": c.list_pod_for_all_namespaces, "Service": c.list_service_for_all_namespaces,
            "ConfigMap": c.list_config_map_for_all_namespaces,
        }
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

    def list_all(self, kind: str, labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        """(See the port.) The next page is asked for as soon as this one is decoded, and read in
        another thread while the caller works on this one: the API server prepares and sends it
        meanwhile, where the caller used to wait for it page after page. In memory: the page
        decoded, the next one's bytes."""
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        if kind not in CUSTOM_PLURALS and kind not in self.all_namespaces:
            raise ClusterError(400, f"unsupported kind {kind}")
        readers = self._readers_pool()
        coming: Future[bytes] | None = readers.submit(self._page, kind, selector, None)
        while coming is not None:
            page = _obj(_decoded(coming.result()))
            token = (page.get("metadata") or {}).get("continue") or None
            coming = None if token is None else readers.submit(self._page, kind, selector, token)
            items = page.get("items") or []
            del page
            for it in items:
                yield _lean(it, kind)
            del items

    def _readers_pool(self) -> ThreadPoolExecutor:
        with self._readers_made:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="kube-read")
            return self._readers

    def _page(self, kind: str, selector: str | None, token: str | None) -> bytes:
        """One page of a cluster-wide list, as the API server sent it (the caller decodes it)."""
        resp: Any
        try:
            if kind in CUSTOM_PLURALS:
                resp = self.custom.list_cluster_custom_object(GROUP, VERSION, CUSTOM_PLURALS[kind],
                                                              label_selector=selector, limit=PAGE, _continue=token,
                                                              _preload_content=False)
            else:
                resp = self.all_namespaces[kind](label_selector=selector, limit=PAGE, _continue=token,
                                                 _preload_content=False)
            return bytes(resp.data)
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc

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

    def pod_proxy(self, namespace: str, pod: str, port: int, method: str, path: str,
                  body: Obj | None = None) -> tuple[int, str]:
        """A request through `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy{path}`. Built by hand
        with the client's own `param_serialize` + `call_api` (its auth, TLS and host): the generated
        `connect_*_namespaced_pod_proxy_with_path` functions take no request body, and quote the
        `/` of a nested path. `call_api` returns any status as it is; the API server's own errors
        are a `Status` object, the pod's answer is anything else."""
        resource = (f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}:{int(port)}"
                    f"/proxy/{quote(path.lstrip('/'), safe='/')}")
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            request = self.api.param_serialize(method=method.upper(), resource_path=resource,
                                               header_params=headers, body=body, auth_settings=["BearerToken"])
            resp = self.api.call_api(*request, _request_timeout=PROXY_TIMEOUT_S)
            raw: bytes = resp.response.data or b""  # the urllib3 response, read whole
            text = raw.decode("utf-8", errors="replace")
        except ApiException as exc:
            raise ClusterError(exc.status or 0, str(exc.reason)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(0, f"{type(exc).__name__}: {exc}") from exc
        refused = _api_status(text) if not 200 <= resp.status < 300 else None
        if refused is not None:
            raise ClusterError(int(refused.get("code") or resp.status), str(refused.get("message") or resp.reason))
        return int(resp.status), text
