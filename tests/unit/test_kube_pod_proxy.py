"""The Kubernetes adapter's `pod_proxy` against a local HTTP server that answers as the API server's
pod proxy does: the request line, headers and JSON body it sends, the pod's own answer passed back
whatever its status, and the API server's own `Status` errors raised as ClusterError."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client

from sre_operator.adapters.kube import Kube
from sre_operator.domain.ports import ClusterError

PREFIX = "/api/v1/namespaces/shop/pods/"


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class ApiServer(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"),
                          "type": self.headers.get("Content-Type"), "body": json.loads(body) if body else None})
        pod = self.path.removeprefix(PREFIX).split("/", 1)[0]
        code, doc = {
            "payment-1:5003": (200, {"crashed": True}),
            "nohooks-1:5003": (404, {"detail": "Not Found"}),
            "gone-1:5003": (404, status(404, "NotFound", 'pods "gone-1" not found')),
            "down-1:5003": (503, status(503, "ServiceUnavailable", "error trying to reach service: dial tcp")),
        }[pod]
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def kube() -> Iterator[Kube]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    conf = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    conf.api_key = {"authorization": "Bearer secret-token"}
    ApiServer.seen = []
    try:
        yield Kube(client.ApiClient(conf))
    finally:
        server.shutdown()
        server.server_close()


def test_a_post_with_a_json_body_reaches_the_pods_port_through_the_proxy(kube: Kube) -> None:
    code, text = kube.pod_proxy("shop", "payment-1", 5003, "POST", "/fault/latency", {"ms": 900})
    assert (code, json.loads(text)) == (200, {"crashed": True})
    assert ApiServer.seen == [{"method": "POST", "path": PREFIX + "payment-1:5003/proxy/fault/latency",
                               "auth": "Bearer secret-token", "type": "application/json", "body": {"ms": 900}}]


def test_a_delete_without_a_body(kube: Kube) -> None:
    assert kube.pod_proxy("shop", "payment-1", 5003, "DELETE", "/fault")[0] == 200
    assert ApiServer.seen[0]["method"] == "DELETE" and ApiServer.seen[0]["body"] is None
    assert ApiServer.seen[0]["path"] == PREFIX + "payment-1:5003/proxy/fault"


def test_the_pods_own_error_is_its_answer(kube: Kube) -> None:
    assert kube.pod_proxy("shop", "nohooks-1", 5003, "POST", "/fault/crash") == (404, '{"detail": "Not Found"}')


@pytest.mark.parametrize(("pod", "code", "transient"), [("gone-1", 404, False), ("down-1", 503, True)])
def test_the_api_servers_own_errors_are_cluster_errors(kube: Kube, pod: str, code: int, transient: bool) -> None:
    with pytest.raises(ClusterError) as err:
        kube.pod_proxy("shop", pod, 5003, "POST", "/fault/crash")
    assert err.value.status == code and err.value.transient is transient


def test_nothing_listening_is_a_transient_cluster_error() -> None:
    conf = client.Configuration(host="http://127.0.0.1:9")
    conf.retries = 0
    kube = Kube(client.ApiClient(conf))
    with pytest.raises(ClusterError) as err:
        kube.pod_proxy("shop", "payment-1", 5003, "POST", "/fault/crash")
    assert err.value.status == 0 and err.value.transient
