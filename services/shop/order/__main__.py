"""Entry point: `python -m shop.order` / `shop-order`.

Readiness reports each dependency (reachable? breaker state?) in its body but does not fail on
them: in Kubernetes an unready order would leave the gateway's endpoints, turning a payment outage
into a total one. Order's own readiness is its storage and its failed state.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from fastapi import FastAPI

from shop.common import settings as cfg
from shop.common.app import ShopApp, serve
from shop.common.client import ServiceClient
from shop.common.logs import log

from . import api, store
from .saga import Saga


def create_app(settings: cfg.ShopSettings | None = None) -> FastAPI:
    settings = settings or cfg.load("order")
    shop = ShopApp(settings, store.SCHEMA)

    def client(target: str, url: str) -> ServiceClient:
        return ServiceClient(target, url, shop.metrics, timeout_s=settings.http_timeout_s,
                             retries=settings.http_retries, breaker_failures=settings.breaker_failures,
                             breaker_reset_s=settings.breaker_reset_s)

    product = client("product", settings.product_url)
    payment = client("payment", settings.payment_url)
    probe = httpx.AsyncClient(timeout=httpx.Timeout(0.5))

    def dependency_check(dep: ServiceClient):
        async def check() -> dict[str, Any]:
            try:
                resp = await probe.get(f"{dep.base_url}/health")
                reachable = resp.status_code == 200
            except httpx.HTTPError:
                reachable = False
            return {"reachable": reachable, "circuit": dep.state.name.lower().replace("_", "-")}
        return check

    shop.readiness_checks = {"product": dependency_check(product), "payment": dependency_check(payment)}
    shop.on_shutdown += [product.aclose, payment.aclose, probe.aclose]
    def count(outcome: str, reason: str) -> None:
        shop.metrics.orders.labels(settings.service, outcome, reason).inc()
    saga = Saga(shop.db, product, payment, shop.logger, on_outcome=count)

    async def recover_pending() -> None:
        """From start on: finish the orders a crash or an unanswered charge left pending."""
        while True:
            try:
                await saga.recover(settings.recovery_grace_s)
            except Exception as exc:  # noqa: BLE001 - a bad pass must not end the loop; logged, tried again
                log(shop.logger, logging.ERROR, "order recovery failed", error=repr(exc))
            await asyncio.sleep(settings.recovery_interval_s)

    shop.background.append(recover_pending)
    return shop.build(api.router(shop, saga))


def main() -> None:
    settings = cfg.load("order")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
