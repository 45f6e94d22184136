"""The app factory every service uses: errors, metrics, faults, tracing, health and readiness."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse

from . import errors, faults, logs, tracing
from .db import Database, Pool
from .metrics import MetricsMiddleware, ShopMetrics
from .settings import ShopSettings

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


class ShopApp:
    """What a service's routes need: settings, logger, metrics, database, fault state."""

    def __init__(self, settings: ShopSettings, schema: str) -> None:
        self.settings = settings
        self.logger = logs.setup(settings.service, settings.log_level)
        self.metrics = ShopMetrics(settings.service)
        pool = Pool(settings.db_pool_size, settings.db_query_ms, on_change=self.metrics.pool_changed)
        self.metrics.pool_size.labels(settings.service).set(settings.db_pool_size)
        self.metrics.pool_changed(0, 0)
        self.db = Database(settings.resolved_db_path(), schema, pool)
        self.faults = faults.FaultState(settings, self.metrics)
        self.readiness_checks: dict[str, ReadinessCheck] = {}
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []  # loops run from start to shutdown

    def build(self, *routers: Any) -> FastAPI:
        shop = self

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            logs.log(shop.logger, logging.INFO, "service started", port=shop.settings.port,
                     db=str(shop.db.path), fault_hooks=shop.settings.fault_hooks)
            tasks = [asyncio.create_task(fn()) for fn in shop.background]
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for fn in shop.on_shutdown:
                await fn()
            tracing.shutdown()

        # The fault gate runs inside the metrics middleware, so injected latency and refusals are
        # measured like real ones, under their route.
        app = FastAPI(title=f"shop-{self.settings.service}", lifespan=lifespan,
                      dependencies=[Depends(faults.gate(self.faults))])
        errors.install(app)
        for r in routers:
            app.include_router(r)
        if self.settings.fault_hooks:
            app.include_router(faults.router(self.faults))

        @app.get("/health", tags=["ops"])
        async def health() -> Response:
            if shop.faults.crashed:
                return JSONResponse({"status": "failed", "service": shop.settings.service}, status_code=503)
            return JSONResponse({"status": "ok", "service": shop.settings.service})

        @app.get("/ready", tags=["ops"])
        async def ready() -> Response:
            own_ok = not shop.faults.crashed and await shop.db.run_direct(shop.db.healthy)
            deps = {name: await check() for name, check in shop.readiness_checks.items()}
            body = {"ready": own_ok, "service": shop.settings.service, "storage": own_ok,
                    "dependencies": deps}
            return JSONResponse(body, status_code=200 if own_ok else 503)

        @app.get("/metrics", tags=["ops"])
        async def metrics() -> Response:
            data, content_type = shop.metrics.render()
            return Response(data, media_type=content_type)

        app.add_middleware(MetricsMiddleware, metrics=self.metrics)
        tracing.setup(app, self.settings.service)
        return app


def serve(app: FastAPI, settings: ShopSettings) -> None:
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
