"""Entry point: `python -m shop.payment` / `shop-payment`."""
from __future__ import annotations

from fastapi import FastAPI

from shop.common import settings as cfg
from shop.common.app import ShopApp, serve

from . import api, ledger


def create_app(settings: cfg.ShopSettings | None = None) -> FastAPI:
    settings = settings or cfg.load("payment")
    shop = ShopApp(settings, ledger.SCHEMA)
    return shop.build(api.router(shop))


def main() -> None:
    settings = cfg.load("payment")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
