"""The thin Kubernetes adapter: read objects as plain dicts, apply patches, roll Deployments.

Uses the official client with `_preload_content=False`, so everything above it works on the same
camelCase dicts the API server speaks."""
from __future__ import annotations

import json
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP = "sre.stratus.dev"
VERSION = "v1alpha1"


def load_config() -> None:
    """In-cluster credentials, else the kubeconfig named by $KUBECONFIG (read now, not at import)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))


def _data(resp: Any) -> dict:
    return json.loads(resp.data)


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            if kind == "Deployment":
                return _data(self.apps.read_namespaced_deployment(name, namespace, _preload_content=False))
            if kind == "ConfigMap":
                return _data(self.core.read_namespaced_config_map(name, namespace, _preload_content=False))
            if kind == "Service":
                return _data(self.core.read_namespaced_service(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raise ValueError(f"unsupported kind {kind}")

    def list(self, kind: str, namespace: str, labels: dict[str, str] | None = None) -> list[dict]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        if kind == "Deployment":
            resp = self.apps.list_namespaced_deployment(namespace, label_selector=selector, _preload_content=False)
        elif kind == "ConfigMap":
            resp = self.core.list_namespaced_config_map(namespace, label_selector=selector, _preload_content=False)
        elif kind == "Service":
            resp = self.core.list_namespaced_service(namespace, label_selector=selector, _preload_content=False)
        else:
            raise ValueError(f"unsupported kind {kind}")
        items = _data(resp)["items"]
        for it in items:
            it["kind"] = kind
        return items

    def list_pods(self, namespace: str, label_selector: str) -> list[dict]:
        resp = self.core.list_namespaced_pod(namespace, label_selector=label_selector, _preload_content=False)
        return _data(resp)["items"]

    def list_replica_sets(self, namespace: str, deployment: str) -> list[dict]:
        items = _data(self.apps.list_namespaced_replica_set(namespace, _preload_content=False))["items"]
        return [r for r in items if any(o.get("kind") == "Deployment" and o.get("name") == deployment
                                        for o in r["metadata"].get("ownerReferences") or [])]

    def recent_logs(self, namespace: str, label_selector: str, lines: int = 20) -> list[str]:
        """The last lines of each container of up to three matching pods (data for triage, never
        instructions). A pod with several containers (the gateway's NGINX and its exporter) needs
        each container named."""
        out = []
        for p in self.list_pods(namespace, label_selector)[:3]:
            for c in (p.get("spec") or {}).get("containers", [])[:3]:
                try:
                    text = self.core.read_namespaced_pod_log(p["metadata"]["name"], namespace, container=c["name"],
                                                             tail_lines=lines, _request_timeout=5)
                except ApiException:
                    continue
                out += [f"{p['metadata']['name']}/{c['name']}: {ln}"[:500] for ln in str(text).splitlines()[-lines:]]
        return out

    def upsert_config_map(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> None:
        body = {"metadata": {"name": name, "labels": labels}, "data": data}
        try:
            self.core.replace_namespaced_config_map(name, namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(namespace, body)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.core.delete_namespaced_pod(name, namespace)

    def patch(self, kind: str, namespace: str, name: str, ptype: str, body: object) -> None:
        """`ptype` json (a list of operations) or merge."""
        # The client sends a list body as a JSON patch, a dict as a strategic-merge patch.
        if ptype == "merge" and kind == "ConfigMap":
            self.core.patch_namespaced_config_map(name, namespace, body)
        elif kind == "Deployment":
            self.apps.patch_namespaced_deployment(name, namespace, body)
        elif kind == "Service" and ptype == "json":
            self.core.patch_namespaced_service(name, namespace, body)
        else:
            raise ValueError(f"unsupported patch {ptype} on {kind}")

    def get_custom(self, plural: str, namespace: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_custom(self, plural: str, namespace: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]

    def create_custom(self, plural: str, namespace: str, body: dict) -> dict:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)

    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None:
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name,
                                                          {"status": status})
