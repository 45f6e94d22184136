"""The dashboard's server: a FastAPI app on :8888 that serves the page, a snapshot of the state
(`/api/state`), one incident's record (`/api/incidents/{name}`), the charts' history
(`/api/series`) and a server-sent event stream (`/api/stream`) fed by watching Incidents,
FaultScenarios and Events in the shop's namespace, plus a health reading every few seconds. The
browser polls nothing: it loads once, then follows the stream.

Read-only: it lists and watches, never writes."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sre_operator.adapters.kube import GROUP, VERSION, Kube
from sre_operator.adapters.prometheus import PromSnapshot, prometheus_client
from sre_operator.detection.signals import Reader

from . import views

log = logging.getLogger("sre_dashboard")
Obj = views.Obj
STATIC = Path(__file__).parent / "static"


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRE_DASHBOARD_")

    namespace: str = "shop"
    prometheus_url: str = "http://prometheus.observability:9090"
    # Loopback unless told otherwise: outside a cluster nobody else should reach it. The chart sets
    # 0.0.0.0 (a pod serves on its IP).
    host: str = "127.0.0.1"
    port: int = Field(8888, ge=1, le=65535)
    health_seconds: float = Field(5.0, gt=0, le=300)
    # Open event streams at most; one more is answered 429 (each holds a queue and a connection).
    max_streams: int = Field(1000, ge=1, le=100_000)
    # Host headers served (besides the loopback names and the Service's): a page on another name
    # that resolves to us (DNS rebinding) gets 400, so it cannot read the API in the browser.
    allowed_hosts: str = ""  # comma-separated
    service_name: str = "sre-operator-dashboard"
    service_namespace: str = ""
    # Undo records (pod templates, ConfigMap data) and environment values are left out of the API
    # unless this says otherwise.
    expose_records: bool = False

    def hosts(self) -> frozenset[str]:
        """Every Host name served: loopback, the Service's DNS names, and `allowed_hosts`."""
        svc = [self.service_name]
        if self.service_namespace:
            base = f"{self.service_name}.{self.service_namespace}"
            svc += [base, f"{base}.svc", f"{base}.svc.cluster.local"]
        extra = [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]
        return frozenset(h.lower() for h in (*LOOPBACK_HOSTS, *svc, *extra))


def host_name(header: str) -> str:
    """The name in a Host header, without its port (`[::1]:8888` → `::1`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """ASGI middleware: requests whose Host is not served get 400, before any route runs. `/healthz`
    is exempt (the kubelet's probes name the pod's IP) and says nothing."""

    def __init__(self, app: Any, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") != "/healthz":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                await JSONResponse({"error": "this Host is not served"}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass
class Hub:
    """Fans each message out to every open stream; keeps the last log lines and health reading
    for pages that connect later. `publish` may be called from any thread."""
    loop: asyncio.AbstractEventLoop
    subscribers: set[asyncio.Queue[Obj]] = field(default_factory=set)
    log: deque[Obj] = field(default_factory=lambda: deque(maxlen=300))
    health: Obj | None = None

    def publish(self, kind: str, data: Any) -> None:
        if kind == "log":
            self.log.append(data)
        if kind == "health":
            self.health = data
        self.loop.call_soon_threadsafe(self._fanout, {"kind": kind, "data": data})

    def _fanout(self, msg: Obj) -> None:
        for q in list(self.subscribers):
            if q.qsize() < 1000:  # a stalled page loses messages, never the server's memory
                q.put_nowait(msg)


class Sources:
    """The Kubernetes and Prometheus reads (the only I/O besides the watches)."""

    def __init__(self, settings: DashboardSettings, kube: Kube | None = None) -> None:
        self.settings = settings
        self.kube = kube or Kube()
        self.prom = prometheus_client(settings.prometheus_url, timeout=3)
        self.reader = Reader(self.kube, settings.namespace)

    def health(self) -> Obj:
        snap = PromSnapshot.take(self.prom, self.settings.prometheus_url, [self.settings.namespace], timeout=3)
        prom = snap.by_namespace.get(self.settings.namespace, {})
        out = views.service_map(prom, self.reader.workloads(), not snap.error)
        out["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return out

    def incidents(self) -> list[Obj]:
        return self.kube.list_objects("Incident", self.settings.namespace)

    def scenarios(self) -> list[Obj]:
        return self.kube.list_objects("FaultScenario", self.settings.namespace)

    def series(self, minutes: int) -> Obj:
        """Error ratio and P95 per service over the last minutes (10 s steps) from Prometheus."""
        ns = self.settings.namespace
        api = f'namespace="{ns}",route=~"/api/.*"'
        gw = f'namespace="{ns}",route!="other"'
        queries = {
            "errorRatio": f'sum by (service) (rate(shop_http_requests_total{{{api},code=~"5.."}}[1m])) / '
                          f'sum by (service) (rate(shop_http_requests_total{{{api}}}[1m]))',
            "p95Seconds": f'histogram_quantile(0.95, sum by (service, le) (rate('
                          f'shop_http_request_duration_seconds_bucket{{{api}}}[1m])))',
            "gatewayErrorRatio": f'sum(rate(gateway_http_requests_total{{{gw},code=~"5.."}}[1m])) / '
                                 f'sum(rate(gateway_http_requests_total{{{gw}}}[1m]))',
            "gatewayP95Seconds": f'histogram_quantile(0.95, sum by (le) (rate('
                                 f'gateway_http_request_duration_seconds_bucket{{{gw}}}[1m])))',
        }
        end = time.time()
        out: dict[str, dict[str, list[list[float]]]] = {"errorRatio": {}, "p95Seconds": {}}
        for key, q in queries.items():
            try:
                result = self.prom.custom_query_range(q, start_time=_dt(end - minutes * 60), end_time=_dt(end),
                                                      step="10")
            except Exception as exc:  # noqa: BLE001 - no history is shown as none, not as an error page
                log.warning("series %s: %s", key, exc)
                continue
            target = "errorRatio" if "rror" in key else "p95Seconds"
            for r in result:
                svc = "gateway" if key.startswith("gateway") else r["metric"].get("service", "?")
                points = [[float(t), float(v)] for t, v in r["values"] if v not in ("NaN", "+Inf", "-Inf")]
                out[target][svc] = points
        return {"series": out, "markers": views.markers(self.incidents(), self.scenarios())}


def _dt(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)  # prometheus-api-client wants datetimes


def _watch(stop: threading.Event, list_fn: Callable[..., Any], args: tuple[Any, ...],
           on_event: Callable[[str, Obj], None], what: str) -> None:
    """Follows one kind of object: list, then watch from that resourceVersion; after an error or
    an expired version, waits a little and lists again. Each object is passed as a plain dict."""
    while not stop.is_set():
        try:
            listed = list_fn(*args, _preload_content=False)
            body = json.loads(listed.data)
            for obj in body.get("items") or []:
                on_event("LISTED", obj)
            rv = body["metadata"].get("resourceVersion")
            w = watch.Watch()
            for ev in w.stream(list_fn, *args, resource_version=rv, timeout_seconds=60):
                if stop.is_set():
                    w.stop()
                    return
                obj = ev["raw_object"] if "raw_object" in ev else ev["object"]
                on_event(ev["type"], obj if isinstance(obj, dict) else obj.to_dict())
        except ApiException as exc:
            if exc.status != 410:
                log.warning("watching %s: %s", what, exc)
                stop.wait(2)
        except Exception as exc:  # noqa: BLE001 - keep following; the API server may be away
            log.warning("watching %s: %s", what, exc)
            stop.wait(2)


def start_watchers(hub: Hub, sources: Sources, stop: threading.Event) -> list[threading.Thread]:
    ns, kube = sources.settings.namespace, sources.kube
    seen_events: dict[str, str] = {}

    def on_incident(kind: str, obj: Obj) -> None:
        hub.publish("incident", {"event": kind, **views.incident_row(obj)})

    def on_scenario(kind: str, obj: Obj) -> None:
        st = obj.get("status") or {}
        hub.publish("scenario", {"event": kind, "name": obj["metadata"]["name"], "type": obj["spec"].get("type"),
                                 "phase": st.get("phase"), "message": st.get("message", ""),
                                 "injectedAt": st.get("injectedAt"), "revertedAt": st.get("revertedAt")})

    def on_event(kind: str, obj: Obj) -> None:
        line = views.log_line(obj)
        if line is None or kind == "DELETED":
            return
        key = f"{line['uid']}/{obj.get('count', 1)}/{line['message']}"
        if seen_events.get(line["uid"] or "") == key:
            return
        seen_events[line["uid"] or ""] = key
        hub.publish("log", line)

    def health_loop() -> None:
        while not stop.is_set():
            try:
                hub.publish("health", sources.health())
            except Exception as exc:  # noqa: BLE001
                log.warning("health: %s", exc)
            stop.wait(sources.settings.health_seconds)

    threads = [
        threading.Thread(target=_watch, args=(stop, kube.custom.list_namespaced_custom_object,
                                              (GROUP, VERSION, ns, "incidents"), on_incident, "incidents"),
                         daemon=True),
        threading.Thread(target=_watch, args=(stop, kube.custom.list_namespaced_custom_object,
                                              (GROUP, VERSION, ns, "faultscenarios"), on_scenario, "faultscenarios"),
                         daemon=True),
        threading.Thread(target=_watch, args=(stop, kube.core.list_namespaced_event, (ns,), on_event, "events"),
                         daemon=True),
        threading.Thread(target=health_loop, daemon=True),
    ]
    for t in threads:
        t.start()
    return threads


def create_app(settings: DashboardSettings | None = None, sources: Sources | None = None) -> FastAPI:
    settings = settings or DashboardSettings()
    state: dict[str, Any] = {}

    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        src = sources or Sources(settings)
        state["sources"] = src
        state["hub"] = Hub(asyncio.get_running_loop())
        state["stop"] = threading.Event()
        start_watchers(state["hub"], src, state["stop"])
        yield
        state["stop"].set()

    from contextlib import asynccontextmanager
    app = FastAPI(title="sre-operator dashboard", lifespan=asynccontextmanager(lifespan))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> Obj:
        return {"status": "ok"}

    @app.get("/api/state")
    async def api_state() -> JSONResponse:
        src: Sources = state["sources"]
        hub: Hub = state["hub"]
        incidents = await asyncio.to_thread(src.incidents)
        scenarios = await asyncio.to_thread(src.scenarios)
        health = hub.health or await asyncio.to_thread(src.health)
        return JSONResponse({
            "namespace": settings.namespace, "health": health,
            "incidents": sorted((views.incident_row(i) for i in incidents), key=lambda r: r["detectedAt"] or "",
                                reverse=True),
            "scenarios": [{"name": s["metadata"]["name"], "type": s["spec"].get("type"),
                           "phase": (s.get("status") or {}).get("phase")} for s in scenarios],
            "log": list(hub.log)})

    @app.get("/api/incidents/{name}")
    async def api_incident(name: str) -> JSONResponse:
        src: Sources = state["sources"]
        inc = await asyncio.to_thread(src.kube.get, "Incident", settings.namespace, name)
        if inc is None:
            raise HTTPException(404, f"no incident {name!r} in {settings.namespace}")
        return JSONResponse(views.incident_detail(inc, expose_records=settings.expose_records))

    @app.get("/api/series")
    async def api_series(minutes: int = Query(15, ge=1, le=180)) -> JSONResponse:
        src: Sources = state["sources"]
        return JSONResponse(await asyncio.to_thread(src.series, minutes))

    @app.get("/api/stream", response_model=None)
    async def api_stream() -> StreamingResponse | JSONResponse:
        hub: Hub = state["hub"]
        if len(hub.subscribers) >= settings.max_streams:
            return JSONResponse({"error": f"{settings.max_streams} streams are open already"}, status_code=429,
                                headers={"Retry-After": "10"})
        queue: asyncio.Queue[Obj] = asyncio.Queue()
        hub.subscribers.add(queue)

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                if hub.health is not None:
                    yield f"event: health\ndata: {json.dumps(hub.health)}\n\n"
                while True:
                    try:
                        msg = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {msg['kind']}\ndata: {json.dumps(msg['data'])}\n\n"
            finally:
                hub.subscribers.discard(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    app.add_middleware(HostCheck, hosts=settings.hosts())
    return app
