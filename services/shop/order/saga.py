"""The order saga: reserve stock → charge payment → confirm the reservation.

Every call carries a key derived from the order id (reservation id, Idempotency-Key), so retrying
any step is safe. When payment declines, is down, times out or its circuit is open, the reservation
is released (compensation) and the order is recorded as failed with the reason.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shop.common.client import ServiceClient, UpstreamError
from shop.common.db import Database
from shop.common.errors import ShopError
from shop.common.logs import log

from . import store

# How a failed step maps to the answer order gives its own caller.
_UPSTREAM_STATUS = {"timeout": 504, "unavailable": 503, "error": 502, "rejected": 503}


def _uncounted(_outcome: str, _reason: str) -> None:
    """No metric to count outcomes in (a saga built outside the service)."""


def outcome_reason(status: str, http: int) -> str:
    """A small, fixed set of reasons for the metric: what a person reads off a dashboard."""
    if status == "confirmed":
        return ""
    if http == 409:
        return "out_of_stock"
    return "upstream" if http >= 500 else "refused"


class Saga:
    def __init__(self, db: Database, product: ServiceClient, payment: ServiceClient,
                 logger: logging.Logger, on_outcome: Callable[[str, str], None] | None = None) -> None:
        self.db = db
        self.product = product
        self.payment = payment
        self.logger = logger
        self.on_outcome = on_outcome or _uncounted  # (outcome, reason): the business metric

    async def place(self, order_id: str, product_id: str, qty: int, customer_name: str) -> tuple[int, dict[str, Any]]:
        """Runs the saga; returns the HTTP status for the caller and the recorded order."""
        try:
            resp = await self.product.request("GET", f"/api/products/{product_id}", idempotent=True)
        except UpstreamError as exc:
            raise ShopError(_UPSTREAM_STATUS[exc.kind], f"product_{exc.kind}",
                            f"product service could not be reached: {exc.message}") from exc
        if resp.status_code == 404:
            raise ShopError(404, "product_not_found", f"no product {product_id!r}")
        product = resp.json()
        amount = round(product["price"] * qty, 2)

        await self.db.run(lambda: store.create(self.db, order_id, product_id, qty, customer_name))
        steps: list[dict[str, Any]] = []

        def step(name: str, outcome: str, **detail: Any) -> None:
            steps.append({"step": name, "outcome": outcome, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          **detail})

        async def finish(
            status: str, http: int, reason: str | None = None, **fields: Any
        ) -> tuple[int, dict[str, Any]]:
            rec = await self.db.run(lambda: store.update(self.db, order_id, status=status, reason=reason,
                                                         amount=amount, steps=steps, **fields))
            log(self.logger, logging.INFO if status == "confirmed" else logging.WARNING, f"order {status}",
                order_id=order_id, reason=reason)
            self.on_outcome(status, outcome_reason(status, http))
            return http, rec

        # 1. reserve
        try:
            resp = await self.product.request("POST", f"/api/products/{product_id}/reservations", idempotent=True,
                                              json={"reservation_id": order_id, "qty": qty})
        except UpstreamError as exc:
            step("reserve", "error", error=exc.message)
            return await finish("failed", _UPSTREAM_STATUS[exc.kind], f"product unavailable: {exc.message}")
        if resp.status_code >= 400:
            err = resp.json().get("error", {})
            step("reserve", "rejected", code=err.get("code"))
            return await finish("failed", resp.status_code, err.get("message", "reservation refused"))
        step("reserve", "ok")

        # 2. charge
        payment_error: str | None = None
        http_status = 502
        try:
            resp = await self.payment.request(
                "POST", "/api/payments", idempotent=True, headers={"Idempotency-Key": f"order-{order_id}"},
                json={"order_id": order_id, "amount": amount, "customer_name": customer_name})
            body = resp.json()
            if resp.status_code in (200, 201):
                step("charge", "ok", payment_id=body["id"])
                payment_id = body["id"]
            elif resp.status_code == 402:
                step("charge", "declined", payment_id=body.get("id"))
                payment_error, http_status = f"payment declined: {body.get('reason', 'declined')}", 402
            else:
                message = body.get("error", {}).get("message", f"HTTP {resp.status_code}")
                step("charge", "rejected", status=resp.status_code)
                payment_error, http_status = f"payment refused: {message}", 502
        except UpstreamError as exc:
            step("charge", "error", error=exc.message, kind=exc.kind)
            payment_error = f"payment {'timed out' if exc.kind == 'timeout' else 'unavailable'}: {exc.message}"
            http_status = _UPSTREAM_STATUS[exc.kind]

        if payment_error is not None:
            await self._compensate(product_id, order_id, step)
            return await finish("failed", http_status, payment_error)

        # 3. confirm
        confirm_error: str | None = None
        try:
            resp = await self.product.request(
                "POST", f"/api/products/{product_id}/reservations/{order_id}/confirm", idempotent=True)
        except UpstreamError as exc:
            confirm_error = exc.message
        else:
            if resp.status_code >= 400:
                confirm_error = f"confirm answered {resp.status_code}"
        if confirm_error is not None:
            # Paid and reserved, only the confirmation is missing: the order stands, flagged for follow-up.
            step("confirm", "error", error=confirm_error)
            return await finish(
                "paid", 201, f"reservation confirmation pending: {confirm_error}", payment_id=payment_id
            )
        step("confirm", "ok")
        return await finish("confirmed", 201, None, payment_id=payment_id)

    async def _compensate(self, product_id: str, order_id: str, step: Any) -> None:
        try:
            resp = await self.product.request(
                "DELETE", f"/api/products/{product_id}/reservations/{order_id}", idempotent=True)
            step("release", "ok" if resp.status_code < 400 else "rejected", status=resp.status_code)
        except UpstreamError as exc:
            step("release", "error", error=exc.message)
