"""The dashboard's server as a browser on another name, or a crowd of streams, would meet it (issue
"Trust boundaries"): a real uvicorn on loopback serving the real app; only the cluster and
Prometheus behind it are stand-ins (their reads fail, or answer fixed records)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from shop.procs import free_port
from sre_dashboard import views
from sre_dashboard.app import DashboardSettings, create_app, host_name

SECRET = "s3cr3t-token-value"  # noqa: S105 - a marker to look for in answers, no credential
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what the chart sets; nothing binds it here
INCIDENT = {
    "metadata": {"name": "inc-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"service": "payment", "symptom": "crash-loop"},
    "status": {
        "phase": "Resolved",
        "actions": [
            {"type": "rollback", "target": {"kind": "Deployment", "name": "payment"}, "outcome": "applied",
             "intent": {"spec": {"template": {"spec": {"containers": [{"name": "payment"}]}}}},
             "undo": {"template": {"spec": {"containers": [
                 {"name": "payment", "env": [{"name": "SHOP_API_TOKEN", "value": SECRET}]}]}}}},
            {"type": "scale", "target": {"kind": "Deployment", "name": "product"}, "outcome": "applied",
             "undo": {"replicas": 1}},
            {"type": "patch-configmap", "target": {"kind": "ConfigMap", "name": "gateway-config"},
             "outcome": "applied", "undo": {"data": {"nginx.conf": f"# {SECRET}"}}},
        ],
        "plan": {"actions": [{"type": "set-env", "env": {"SHOP_API_TOKEN": SECRET}}]},
    },
}


class _Unreachable:
    """The cluster's watch calls: always fail (the watch threads retry every 2 s, quietly)."""

    def __getattr__(self, name: str) -> Any:
        def call(*_a: Any, **_k: Any) -> Any:
            raise ConnectionError("no cluster in this test")
        return call


class _Kube:
    custom = _Unreachable()
    core = _Unreachable()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return INCIDENT if (kind, name) == ("Incident", "inc-1") else None


class _Sources:
    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.kube = _Kube()

    def health(self) -> dict[str, Any]:
        return {"nodes": [], "edges": [], "prometheus": False, "at": "now"}

    def incidents(self) -> list[dict[str, Any]]:
        return [INCIDENT]

    def scenarios(self) -> list[dict[str, Any]]:
        return []

    def series(self, minutes: int) -> dict[str, Any]:
        return {"series": {}, "markers": []}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: Any) -> str:
        settings = DashboardSettings(**overrides)
        port = free_port()
        app = create_app(settings, sources=_Sources(settings))  # type: ignore[arg-type]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_binds_loopback_unless_told_and_the_chart_tells_it_0000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRE_DASHBOARD_HOST", raising=False)
    assert DashboardSettings().host == "127.0.0.1"
    monkeypatch.setenv("SRE_DASHBOARD_HOST", ANY_ADDRESS)
    assert DashboardSettings().host == ANY_ADDRESS
    from tests.unit.test_charts import render
    [dash] = [d for d in render("sre-operator") if d["kind"] == "Deployment" and "dashboard" in d["metadata"]["name"]]
    env = {e["name"]: e.get("value") for e in dash["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SRE_DASHBOARD_HOST"] == ANY_ADDRESS and env["SRE_DASHBOARD_SERVICE_NAME"] == "rel-dashboard"


@pytest.mark.parametrize(("header", "name"), [("localhost:8888", "localhost"), ("[::1]:8888", "::1"),
                                              ("127.0.0.1", "127.0.0.1"), ("EVIL.example:80", "evil.example"),
                                              ("::1", "::1")])
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_a_host_it_does_not_serve_gets_400_but_probes_on_the_pod_ip_still_answer(serve: Any) -> None:
    url = serve(service_name="rel-dashboard", service_namespace="sre", allowed_hosts="dash.example.com")
    # A page on a name rebound to 127.0.0.1 sends its own name as Host.
    for host in ("rebind.attacker.example", "rebind.attacker.example:8888", "10.0.0.7:8888", ""):
        resp = httpx.get(f"{url}/api/state", headers={"Host": host})
        assert resp.status_code == 400, (host, resp.text)
        assert SECRET not in resp.text
    assert httpx.get(f"{url}/api/incidents/inc-1", headers={"Host": "rebind.attacker.example"}).status_code == 400
    for host in ("localhost:8888", "127.0.0.1", "[::1]:8888", "rel-dashboard", "rel-dashboard.sre.svc:8888",
                 "rel-dashboard.sre.svc.cluster.local", "DASH.example.com"):
        assert httpx.get(f"{url}/api/state", headers={"Host": host}).status_code == 200, host
    assert httpx.get(f"{url}/healthz", headers={"Host": "10.0.0.7:8888"}).json() == {"status": "ok"}


def test_undo_templates_data_and_env_values_stay_out_of_the_api_unless_asked(serve: Any) -> None:
    url = serve()
    resp = httpx.get(f"{url}/api/incidents/inc-1")
    assert resp.status_code == 200 and SECRET not in resp.text
    steps = {s["title"]: s for s in resp.json()["steps"] if s["kind"] == "action"}
    assert steps["scale deployment/product"]["undo"] == {"replicas": 1}  # a count is not a secret
    assert steps["rollback deployment/payment"]["undo"] == {"template": views.HIDDEN}
    assert resp.json()["plan"]["actions"][0]["env"] == {"SHOP_API_TOKEN": views.HIDDEN}  # the name stays
    shown = httpx.get(f"{serve(expose_records=True)}/api/incidents/inc-1")
    assert SECRET in shown.text


async def _open_stream(port: int) -> tuple[int, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    return status, writer


def test_the_stream_past_the_cap_gets_429_and_healthz_stays_up(serve: Any) -> None:
    url = serve()  # the default cap: 1000
    port = int(url.rsplit(":", 1)[1])

    async def crowd() -> None:
        opened = await asyncio.gather(*(_open_stream(port) for _ in range(1000)))
        try:
            assert [s for s, _ in opened] == [200] * 1000
            status, extra = await _open_stream(port)
            assert status == 429
            extra.close()
            async with httpx.AsyncClient(timeout=5) as client:
                assert (await client.get(f"{url}/healthz")).status_code == 200
                assert (await client.get(f"{url}/api/state")).status_code == 200
            opened[0][1].close()  # one leaves: a place is free again
            deadline = time.monotonic() + 10
            while True:
                status, again = await _open_stream(port)
                again.close()
                if status == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert status == 200
        finally:
            for _, writer in opened:
                writer.close()

    asyncio.run(crowd())
