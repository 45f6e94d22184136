"""A service's capacity and memory as the overload and memory-leak scenarios need them: a bounded
database pool queues load past its capacity (the saturation signal), health checks still answer,
and the leak hook really grows the process."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import Shop, wait_for


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _burst(url: str, n: int) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:
        async def one() -> float:
            t = time.monotonic()
            resp = await client.get(url)
            assert resp.status_code == 200
            return time.monotonic() - t
        return await asyncio.gather(*(one() for _ in range(n)))


def test_a_full_pool_queues_queries_and_reports_it(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(product={"SHOP_DB_POOL_SIZE": "2", "SHOP_DB_QUERY_MS": "200"})
    shop.start("product")
    assert shop.metric("product", "shop_db_pool_size", service="product") == 2.0
    url = f"{shop.url('product')}/api/products"
    seen: dict[str, float] = {}

    async def burst_and_watch() -> list[float]:
        task = asyncio.create_task(_burst(url, 8))
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient() as client:
            from .conftest import scrape_value
            text = (await client.get(f"{shop.url('product')}/metrics")).text
            seen["in_use"] = scrape_value(text, "shop_db_pool_in_use", service="product") or 0.0
            seen["waiting"] = scrape_value(text, "shop_db_pool_waiting", service="product") or 0.0
            t = time.monotonic()
            ready = await client.get(f"{shop.url('product')}/ready")
            seen["ready_seconds"] = time.monotonic() - t
            assert ready.status_code == 200
        return await task

    took = asyncio.run(burst_and_watch())
    # 8 queries through 2 connections of 200 ms: 4 rounds, the last ones waited ~600 ms.
    assert max(took) >= 0.75, took
    assert seen["in_use"] == 2.0 and seen["waiting"] >= 4.0, seen
    assert seen["ready_seconds"] < 0.5, "readiness waited for a pool connection"
    wait_for(lambda: shop.metric("product", "shop_db_pool_in_use", service="product") == 0.0,
             what="the pool drained")


def test_an_unbounded_pool_does_not_queue(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(product={"SHOP_DB_QUERY_MS": "200"})
    shop.start("product")
    took = asyncio.run(_burst(f"{shop.url('product')}/api/products", 8))
    assert max(took) < 0.75, took


def test_the_leak_hook_grows_the_process(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(product={"SHOP_FAULT_LEAK_KB": "2048"})
    proc = shop.start("product")
    before = _rss_kib(proc.proc.pid)
    for _ in range(20):
        assert httpx.get(f"{shop.url('product')}/api/products").status_code == 200
    assert shop.metric("product", "shop_fault_memory_kept_bytes", service="product") == 20 * 2048 * 1024
    grown = _rss_kib(proc.proc.pid) - before
    assert grown >= 35 * 1024, f"RSS grew by {grown} KiB only"
    # Health and metrics requests do not leak.
    httpx.get(f"{shop.url('product')}/health")
    assert shop.metric("product", "shop_fault_memory_kept_bytes", service="product") == 20 * 2048 * 1024


def test_the_load_generator_holds_its_rate_with_workers(make_shop: Callable[..., Shop], tmp_path: Path) -> None:
    import subprocess
    import sys

    shop = make_shop()
    shop.start("product")
    env = {"SHOP_GATEWAY_URL": shop.url("product"), "SHOP_TRAFFIC_RPS": "40", "SHOP_TRAFFIC_CONCURRENCY": "4",
           "SHOP_TRAFFIC_ORDER_EVERY": "0", "PATH": "/usr/bin:/bin"}
    gen = subprocess.Popen([sys.executable, "-m", "shop.traffic"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
    finally:
        gen.terminate()
        gen.wait(timeout=10)
    served = shop.metric("product", "shop_http_requests_total", service="product", route="/api/products",
                         code="200") or 0.0
    # 40 a second for ~3 s (minus start-up): well above what one waiting worker at 10/s would send.
    assert 60 <= served <= 140, served
