"""The order saga: reserve stock → charge payment → confirm the reservation.

Every call carries a key derived from the order id (reservation id, Idempotency-Key), so retrying
any step is safe. When payment declines, is down or its circuit is open, the reservation is released
(compensation) and the order is recorded as failed with the reason. A charge whose answer was lost
(a timeout) may have been made: payment is asked to settle it by its key first, and the order
follows that answer; while payment cannot say, the order stays `pending` with its stock reserved.
`recover` finishes such orders, and those a crash interrupted, from what product and payment say.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Charge:
    """What the charge step came to: a payment, an error to compensate for, or not known yet."""
    payment_id: str | None = None
    error: str | None = None
    http: int = 201
    unknown: bool = False


class Saga:
    def __init__(self, db: Database, product: ServiceClient, payment: ServiceClient,
                 logger: logging.Logger, on_outcome: Callable[[str, str], None] | None = None) -> None:
        self.db = db
        self.product = product
        self.payment = payment
        self.logger = logger
        self.on_outcome = on_outcome or _uncounted  # (outcome, reason): the business metric
        self.in_flight: set[str] = set()  # orders whose saga runs in this process: not for `recover`

    async def place(self, order_id: str, product_id: str, qty: int, customer_name: str) -> tuple[int, dict[str, Any]]:
        """Runs the saga; returns the HTTP status for the caller and the recorded order."""
        self.in_flight.add(order_id)
        try:
            return await self._place(order_id, product_id, qty, customer_name)
        finally:
            self.in_flight.discard(order_id)

    async def _place(self, order_id: str, product_id: str, qty: int, customer_name: str) -> tuple[int, dict[str, Any]]:
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
            if exc.maybe_done:  # the reservation may stand although its answer was lost
                await self._compensate(product_id, order_id, step)
            return await finish("failed", _UPSTREAM_STATUS[exc.kind], f"product unavailable: {exc.message}")
        if resp.status_code >= 400:
            err = resp.json().get("error", {})
            step("reserve", "rejected", code=err.get("code"))
            return await finish("failed", resp.status_code, err.get("message", "reservation refused"))
        step("reserve", "ok")

        # 2. charge
        charge = await self._charge(order_id, amount, customer_name, step)
        if charge.unknown:
            return await finish("pending", charge.http, f"{charge.error}; whether it was charged is not known "
                                "yet, the stock stays reserved until payment says")
        if charge.error is not None:
            await self._compensate(product_id, order_id, step)
            return await finish("failed", charge.http, charge.error)
        payment_id = charge.payment_id

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

    async def _charge(self, order_id: str, amount: float, customer_name: str, step: Any) -> _Charge:
        try:
            resp = await self.payment.request(
                "POST", "/api/payments", idempotent=True, headers={"Idempotency-Key": f"order-{order_id}"},
                json={"order_id": order_id, "amount": amount, "customer_name": customer_name})
        except UpstreamError as exc:
            step("charge", "error", error=exc.message, kind=exc.kind)
            error = f"payment {'timed out' if exc.kind == 'timeout' else 'unavailable'}: {exc.message}"
            if not exc.maybe_done:
                return _Charge(error=error, http=_UPSTREAM_STATUS[exc.kind])
            made = await self._settle(order_id, step)  # the charge may have been made: ask before compensating
            if made is None:
                return _Charge(error=error, http=_UPSTREAM_STATUS[exc.kind], unknown=True)
            if made.get("status") == "approved":
                return _Charge(payment_id=str(made["id"]))
            if made.get("status") == "declined":
                return _Charge(error=f"payment declined: {made.get('reason', 'declined')}", http=402)
            return _Charge(error=error, http=_UPSTREAM_STATUS[exc.kind])
        body = resp.json()
        if resp.status_code in (200, 201):
            step("charge", "ok", payment_id=body["id"])
            return _Charge(payment_id=str(body["id"]))
        if resp.status_code == 402:
            step("charge", "declined", payment_id=body.get("id"))
            return _Charge(error=f"payment declined: {body.get('reason', 'declined')}", http=402)
        message = body.get("error", {}).get("message", f"HTTP {resp.status_code}")
        step("charge", "rejected", status=resp.status_code)
        return _Charge(error=f"payment refused: {message}", http=502)

    async def _settle(self, order_id: str, step: Any) -> dict[str, Any] | None:
        """The payment made under the order's key ({} when none was, and now none will be), or None
        when payment cannot say."""
        try:
            resp = await self.payment.request("POST", "/api/payments/settle", idempotent=True,
                                              headers={"Idempotency-Key": f"order-{order_id}"})
            body = resp.json() if resp.status_code == 200 else None
        except (UpstreamError, ValueError) as exc:
            step("settle", "error", error=str(exc))
            return None
        if not isinstance(body, dict) or not isinstance(body.get("payment"), dict | None):
            step("settle", "error", error=f"settle answered {resp.status_code}")
            return None
        payment: dict[str, Any] = body["payment"] or {}
        step("settle", "charged" if payment else "not_charged", payment_id=payment.get("id"))
        return payment

    async def _compensate(self, product_id: str, order_id: str, step: Any) -> bool:
        """Release the reservation; True when it is released or never was made."""
        try:
            resp = await self.product.request(
                "DELETE", f"/api/products/{product_id}/reservations/{order_id}", idempotent=True)
        except UpstreamError as exc:
            step("release", "error", error=exc.message)
            return False
        step("release", "ok" if resp.status_code < 400 else "rejected", status=resp.status_code)
        return resp.status_code < 400 or resp.status_code == 404

    async def recover(self, grace_s: float) -> int:
        """Finish the `pending` orders no saga of this process is running and that have not moved
        for `grace_s` (a crash interrupted them, or payment could not say whether it charged):
        confirm what payment charged, compensate the rest. Returns how many were finished."""
        stuck = await self.db.run(lambda: store.stuck(self.db, grace_s))
        done = 0
        for order in stuck:
            if order["id"] not in self.in_flight and await self._recover_one(order):
                done += 1
        return done

    async def _recover_one(self, order: dict[str, Any]) -> bool:
        order_id, product_id = order["id"], order["product_id"]
        steps: list[dict[str, Any]] = list(order["steps"])

        def step(name: str, outcome: str, **detail: Any) -> None:
            steps.append({"step": name, "outcome": outcome, "recovered": True,
                          "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **detail})

        async def finish(status: str, reason: str | None, **fields: Any) -> bool:
            await self.db.run(lambda: store.update(self.db, order_id, status=status, reason=reason, steps=steps,
                                                   **fields))
            log(self.logger, logging.WARNING, f"interrupted order {status}", order_id=order_id, reason=reason)
            return True

        made = await self._settle(order_id, step)
        if made is None:
            return False  # payment cannot say yet: asked again next time
        if made.get("status") == "approved":
            try:
                resp = await self.product.request(
                    "POST", f"/api/products/{product_id}/reservations/{order_id}/confirm", idempotent=True)
                error = None if resp.status_code < 400 else f"confirm answered {resp.status_code}"
            except UpstreamError as exc:
                error = exc.message
            step("confirm", "ok" if error is None else "error", **({"error": error} if error else {}))
            if error is not None:
                return await finish("paid", f"reservation confirmation pending: {error}",
                                    payment_id=made["id"], amount=made.get("amount"))
            return await finish("confirmed", None, payment_id=made["id"], amount=made.get("amount"))
        if not await self._compensate(product_id, order_id, step):
            return False  # not charged, and never will be (the key is closed); released next time
        if made.get("status") == "declined":
            return await finish("failed", f"payment declined: {made.get('reason', 'declined')}",
                                payment_id=made.get("id"))
        return await finish("failed", "interrupted before payment was made; the reservation was released")
