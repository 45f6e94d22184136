"""HTTP routes of the payment service."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shop.common.app import ShopApp

from . import ledger

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)]


class PaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(gt=0, le=1_000_000)
    customer_name: str = Field(min_length=1, max_length=200)


def router(shop: ShopApp) -> APIRouter:
    r = APIRouter(prefix="/api/payments", tags=["payments"])
    db = shop.db
    limit = shop.settings.payment_max_amount

    @r.post("", status_code=201)
    async def create(body: PaymentRequest, idempotency_key: IdempotencyKey = None) -> Response:
        payment, replayed = await db.run(lambda: ledger.charge(
            db, order_id=body.order_id, amount=body.amount, customer_name=body.customer_name,
            idempotency_key=idempotency_key, max_amount=limit))
        status = 402 if payment["status"] == "declined" else (200 if replayed else 201)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return JSONResponse(payment, status_code=status, headers=headers)

    @r.post("/settle")
    async def settle(idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1,
                                                              max_length=128)]) -> dict[str, Any]:
        """Was the charge under this key made? If not, it never will be: the key is closed."""
        payment = await db.run(lambda: ledger.settle(db, idempotency_key))
        return {"idempotency_key": idempotency_key, "made": payment is not None, "payment": payment}

    @r.get("")
    async def by_order(order_id: Annotated[str, Query(min_length=1, max_length=128)]) -> dict[str, Any]:
        return {"order_id": order_id, "count": await db.run(lambda: ledger.count_for_order(db, order_id))}

    @r.get("/{payment_id}")
    async def get(payment_id: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
        return await db.run(lambda: ledger.get(db, payment_id))

    return r
