"""One settings object per service, read from `SHOP_*` environment variables.

The prefix keeps our variables apart from the `<SERVICE>_PORT` variables Kubernetes injects.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ShopSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    service: str = "shop"
    host: str = "0.0.0.0"  # noqa: S104 - a pod serves on its IP
    port: int = Field(0, ge=0, le=65535)
    db_path: Path | None = None
    log_level: str = "INFO"

    product_url: str = "http://product:5002"
    payment_url: str = "http://payment:5003"
    http_timeout_s: float = Field(2.0, gt=0, le=60)
    http_retries: int = Field(2, ge=0, le=5)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_reset_s: float = Field(10.0, gt=0, le=3600)
    # order: how often pending orders are looked at, and how long one must have stood still to be
    # finished from what product and payment say (longer than any call of a live saga takes).
    recovery_interval_s: float = Field(15.0, gt=0, le=3600)
    recovery_grace_s: float = Field(30.0, ge=0, le=86_400)

    payment_max_amount: float = Field(10_000.0, gt=0)

    fault_hooks: bool = False
    fault_latency_ms: int = Field(0, ge=0, le=60_000)
    fault_cpu_ms: int = Field(0, ge=0, le=60_000)
    fault_crashed: bool = False
    fault_leak_kb: int = Field(0, ge=0, le=65_536)  # memory kept for good on every API request

    # The database as a remote one behaves: a pool of `db_pool_size` connections (0: unbounded) and
    # `db_query_ms` of round trip per query. A pod then serves at most pool/round-trip queries a
    # second, and more load queues for a connection: saturation that more replicas relieve.
    db_pool_size: int = Field(0, ge=0, le=1000)
    db_query_ms: int = Field(0, ge=0, le=10_000)
    # product: a product whose stock falls below this is refilled to its par level (0: never).
    restock_below: int = Field(10, ge=0, le=1_000_000)

    def resolved_db_path(self) -> Path:
        return self.db_path or Path("/data") / f"{self.service}.db"


DEFAULT_PORTS = {"order": 5001, "product": 5002, "payment": 5003}


def load(service: str) -> ShopSettings:
    settings = ShopSettings(service=service)
    if settings.port == 0:
        settings.port = DEFAULT_PORTS[service]
    return settings
