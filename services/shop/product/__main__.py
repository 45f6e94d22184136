"""Entry point: `python -m shop.product` / `shop-product`."""
from __future__ import annotations

from fastapi import FastAPI

from shop.common import settings as cfg
from shop.common.app import ShopApp, serve

from . import api, catalog


def create_app(settings: cfg.ShopSettings | None = None) -> FastAPI:
    settings = settings or cfg.load("product")
    shop = ShopApp(settings, catalog.SCHEMA)
    catalog.seed(shop.db)
    return shop.build(api.router(shop))


def main() -> None:
    settings = cfg.load("product")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
