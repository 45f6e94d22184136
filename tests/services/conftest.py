"""Fixtures for the services tier: the shop's services, NGINX and Prometheus as real processes on
loopback, each on a free port, in the test's own temp dir, stopped even when a test fails."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shop import procs


@dataclass
class Shop:
    data: Path
    ports: dict[str, int]
    env: dict[str, dict[str, str]]
    running: dict[str, procs.ManagedProcess] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, wait: bool = True) -> procs.ManagedProcess:
        p = procs.service(name, self.ports[name], self.data, **self.env.get(name, {})).start()
        self.running[name] = p
        if wait:
            p.wait_healthy()
        return p

    def stop(self, name: str) -> None:
        self.running.pop(name).stop()

    def kill(self, name: str) -> None:
        self.running.pop(name).kill()

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def stop_all(self) -> None:
        for name in list(self.running)[::-1]:
            self.stop(name)

    def order(self, product_id: str = "P001", qty: int = 1, customer_name: str = "Demo User") -> httpx.Response:
        return httpx.post(f"{self.url('order')}/api/orders", timeout=30,
                          json={"product_id": product_id, "qty": qty, "customer_name": customer_name})

    def stock(self, product_id: str = "P001") -> int:
        return int(httpx.get(f"{self.url('product')}/api/products/{product_id}").json()["stock"])

    def metric(self, name: str, sample: str, **labels: str) -> float | None:
        return scrape_value(httpx.get(f"{self.url(name)}/metrics").text, sample, **labels)


def scrape_value(text: str, sample: str, **labels: str) -> float | None:
    """The value of the first sample `sample{...}` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[Callable[..., Shop]]:
    """Build a shop with per-service env overrides; nothing is started until `.start()` is called."""
    made: list[Shop] = []

    def factory(**env: dict[str, str]) -> Shop:
        ports = {n: procs.free_port() for n in ("product", "payment", "order")}
        order_env = {"SHOP_PRODUCT_URL": f"http://127.0.0.1:{ports['product']}",
                     "SHOP_PAYMENT_URL": f"http://127.0.0.1:{ports['payment']}",
                     "SHOP_HTTP_TIMEOUT_S": "1.0", **env.get("order", {})}
        shop = Shop(tmp_path / f"shop{len(made)}", ports, {**env, "order": order_env})
        made.append(shop)
        return shop

    yield factory
    for shop in made:
        shop.stop_all()


@pytest.fixture
def shop(make_shop: Callable[..., Shop]) -> Shop:
    """The three services running with default settings."""
    s = make_shop()
    for name in ("product", "payment", "order"):
        s.start(name)
    return s
