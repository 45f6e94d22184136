"""The node agent's client of the API server: plain HTTPS with the agent's client certificate.

Only what a kubelet needs: get, list, watch, create, merge-patch and delete, with errors that say
which object and why."""
from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class KubeApi:
    def __init__(self, server: str, ca: Path, cert: Path, key: Path, timeout: float = 10.0) -> None:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self._ctx = ctx
        self.server = server
        self._http = httpx.Client(base_url=server, verify=ctx, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, body: Any = None, params: dict | None = None,
                content_type: str = "application/json") -> dict:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        resp = self._http.request(method, path, content=data, params=params, headers=headers)
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise ApiError(resp.status_code, f"{method} {path}: {message}")
        return resp.json() if resp.content else {}

    def get(self, path: str, **params: Any) -> dict:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body=body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: dict | None = None) -> dict:
        return self.request("DELETE", path, body=body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 60, **params: Any) -> Iterator[dict]:
        """Events of a watch until the server ends it; raises ApiError on a 410 (start over)."""
        query = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds),
                 "allowWatchBookmarks": "true", **params}
        with httpx.Client(base_url=self.server, verify=self._ctx,
                          timeout=httpx.Timeout(10.0, read=timeout_seconds + 15)) as http, \
                http.stream("GET", path, params=query) as resp:
                if resp.status_code >= 400:
                    raise ApiError(resp.status_code, f"watch {path}: {resp.read().decode(errors='replace')}")
                for line in resp.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        raise ApiError(int(event["object"].get("code", 500)), event["object"].get("message", ""))
                    yield event
