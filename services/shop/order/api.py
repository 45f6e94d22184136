"""HTTP routes of the order service."""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shop.common.app import ShopApp

from . import store
from .saga import Saga


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    qty: int = Field(ge=1, le=1000)
    customer_name: str = Field(min_length=1, max_length=200)


def router(shop: ShopApp, saga: Saga) -> APIRouter:
    r = APIRouter(prefix="/api/orders", tags=["orders"])
    db = shop.db

    @r.post("", status_code=201)
    async def place(body: OrderRequest) -> JSONResponse:
        order_id = "ORD-" + uuid.uuid4().hex[:12].upper()
        status, order = await saga.place(order_id, body.product_id, body.qty, body.customer_name)
        return JSONResponse(order, status_code=status)

    @r.get("")
    async def recent(limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     status: Literal["pending", "confirmed", "paid", "failed"] | None = None) -> list[dict[str, Any]]:
        return await db.run(lambda: store.recent(db, limit, status))

    @r.get("/{order_id}")
    async def get(order_id: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
        return await db.run(lambda: store.get(db, order_id))

    return r
