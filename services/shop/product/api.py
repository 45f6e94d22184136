"""HTTP routes of the product service."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from shop.common.app import ShopApp

from . import catalog

ProductId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ReservationId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ReservationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reservation_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    qty: int = Field(ge=1, le=1000)


def router(shop: ShopApp) -> APIRouter:
    r = APIRouter(prefix="/api/products", tags=["products"])
    db = shop.db

    @r.get("")
    async def list_products() -> list[dict[str, Any]]:
        return await db.run(lambda: catalog.list_products(db))

    @r.get("/{product_id}")
    async def get_product(product_id: ProductId) -> dict[str, Any]:
        return await db.run(lambda: catalog.get_product(db, product_id))

    @r.post("/{product_id}/reservations", status_code=201)
    async def reserve(product_id: ProductId, body: ReservationRequest, response: Response) -> dict[str, Any]:
        reservation, created = await db.run(
            lambda: catalog.reserve(db, product_id, body.reservation_id, body.qty, shop.settings.restock_below))
        if not created:
            response.status_code = 200
        return reservation

    @r.delete("/{product_id}/reservations/{reservation_id}")
    async def release(product_id: ProductId, reservation_id: ReservationId) -> dict[str, Any]:
        return await db.run(lambda: catalog.release(db, product_id, reservation_id))

    @r.post("/{product_id}/reservations/{reservation_id}/confirm")
    async def confirm(product_id: ProductId, reservation_id: ReservationId) -> dict[str, Any]:
        return await db.run(lambda: catalog.confirm(db, product_id, reservation_id))

    return r
