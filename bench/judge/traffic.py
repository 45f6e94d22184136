"""The benchmark's own shoppers: catalogue reads and orders through the gateway's published port on
127.0.0.1, each paced by its own thread, every request recorded as a Sample (wall clock, status,
latency, outcome).

Stock: 455 units in all; reservations confirmed by paid orders take from it, released ones come
back, and the product service refills a product that falls below `SHOP_RESTOCK_BELOW` units (10
unless its Deployment says otherwise; 0: never) to its par level. The shoppers order the product with
the most stock left (read from the catalogue reads), orders can be paused outside measurement, and
the runner reinstalls the shop only when it does not restock and what is left would not last the
next run (`stock_left`), or when an order met an empty shelf (`stockouts`)."""
from __future__ import annotations

import threading
import time

import httpx

from .slo import ERROR, OK, STOCKOUT, Sample


def classify(op: str, code: int, body: object) -> str:
    if op == "read":
        return OK if code == 200 else ERROR
    if code == 201:
        return OK
    if code == 409 and isinstance(body, dict) and "stock" in str(body.get("error", body)).lower():
        return STOCKOUT
    return ERROR


class Shoppers:
    def __init__(self, base: str, read_rps: float, order_rps: float, timeout: float = 5.0) -> None:
        self.base, self.read_rps, self.order_rps, self.timeout = base, read_rps, order_rps, timeout
        self.samples: list[Sample] = []
        self.stock: dict[str, int] = {}
        self.stop = threading.Event()
        self.orders_on = threading.Event()
        self.orders_on.set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=("read",), daemon=True),
                        threading.Thread(target=self._loop, args=("order",), daemon=True)]
        self.n = 0

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(self.timeout + 2)

    def stock_left(self) -> int:
        return sum(self.stock.values())

    def stockouts(self, since: float) -> int:
        """Orders refused for want of stock since `since` (wall clock)."""
        with self.lock:
            return sum(1 for s in self.samples if s.at >= since and s.outcome == STOCKOUT)

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return sorted(self.samples, key=lambda s: s.at)

    def _loop(self, op: str) -> None:
        period = 1.0 / (self.read_rps if op == "read" else self.order_rps)
        nxt = time.monotonic()
        with httpx.Client(timeout=self.timeout, trust_env=False) as c:  # 127.0.0.1, never a proxy
            while not self.stop.is_set():
                nxt += period
                if op == "read" or self.orders_on.is_set():
                    self._one(c, op)
                delay = nxt - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
                else:
                    nxt = time.monotonic()  # behind (slow answers): no burst to catch up

    def _one(self, c: httpx.Client, op: str) -> None:
        at, t0 = time.time(), time.perf_counter()
        body: object = None
        try:
            if op == "read":
                r = c.get(f"{self.base}/api/products")
            else:
                self.n += 1
                pid = max(self.stock, key=lambda k: self.stock[k]) if self.stock else "P002"
                r = c.post(f"{self.base}/api/orders", json={"product_id": pid, "qty": 1, "customer_name": "bench"})
            code = r.status_code
            try:
                body = r.json()
            except ValueError:
                body = None
        except httpx.HTTPError:
            code = 0
        seconds = time.perf_counter() - t0
        if op == "read" and code == 200 and isinstance(body, list):
            self.stock = {p["id"]: int(p.get("stock", 0)) for p in body if isinstance(p, dict) and "id" in p}
        with self.lock:
            self.samples.append(Sample(at, op, code, seconds, classify(op, code, body)))
