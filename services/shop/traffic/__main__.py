"""`python -m shop.traffic`: shoppers through the gateway, a few requests a second, forever; with
more workers, the load generator of the real-overload scenario.

Environment: `SHOP_GATEWAY_URL` (default http://gateway), `SHOP_TRAFFIC_RPS` (requests a second in
all, default 3), `SHOP_TRAFFIC_ORDER_EVERY` (one order every N requests, default 4; 0: catalogue
reads only), `SHOP_TRAFFIC_CONCURRENCY` (workers sharing the rate, default 1: a worker waits for its
answer, so the offered rate holds while answers are faster than workers/rate). With one worker each
failure and every 50th request is logged as a JSON line (`kubectl logs deploy/traffic` shows what a
customer saw); with more, a summary line every 10 seconds."""
from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import Counter

import httpx

PRODUCTS = ("P001", "P002", "P004")


def request_for(i: int, every: int) -> tuple[str, str, dict | None]:
    if every and i % every == 0:
        pid = PRODUCTS[(i // every) % len(PRODUCTS)]
        return "POST", "/api/orders", {"product_id": pid, "qty": 1, "customer_name": "demo"}
    return "GET", "/api/products", None


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: Counter[int] = Counter()
        self.slowest = 0.0

    def add(self, code: int, took: float) -> None:
        with self.lock:
            self.codes[code] += 1
            self.slowest = max(self.slowest, took)

    def take(self) -> dict:
        with self.lock:
            out = {"codes": {str(k): v for k, v in sorted(self.codes.items())},
                   "slowest_ms": round(self.slowest * 1000, 1)}
            self.codes.clear()
            self.slowest = 0.0
        return out


def worker(base: str, rate: float, every: int, offset: int, step: int, tally: Tally | None) -> None:
    with httpx.Client(timeout=5) as client:
        for i in itertools.count(offset, step):
            started = time.monotonic()
            method, path, body = request_for(i, every)
            try:
                code = client.request(method, base + path, json=body).status_code
            except httpx.HTTPError as exc:
                code = 0
                if tally is None:
                    print(json.dumps({"msg": "request failed", "path": path, "error": type(exc).__name__}),
                          flush=True)
            took = time.monotonic() - started
            if tally is not None:
                tally.add(code, took)
            elif code >= 500 or code == 0 or i % 50 == 0:
                print(json.dumps({"msg": "request", "method": method, "path": path, "status": code,
                                  "ms": round(took * 1000, 1), "n": i}), flush=True)
            time.sleep(max(0.0, 1.0 / rate - took))


def main() -> None:
    base = os.environ.get("SHOP_GATEWAY_URL", "http://gateway").rstrip("/")
    rps = max(0.1, float(os.environ.get("SHOP_TRAFFIC_RPS", "3")))
    every = max(0, int(os.environ.get("SHOP_TRAFFIC_ORDER_EVERY", "4")))
    workers = max(1, min(256, int(os.environ.get("SHOP_TRAFFIC_CONCURRENCY", "1"))))
    print(json.dumps({"msg": "traffic starting", "gateway": base, "rps": rps, "workers": workers}), flush=True)
    if workers == 1:
        worker(base, rps, every, 0, 1, None)
        return
    tally = Tally()
    for n in range(workers):
        threading.Thread(target=worker, args=(base, rps / workers, every, n, workers, tally), daemon=True).start()
    while True:
        time.sleep(10)
        print(json.dumps({"msg": "last 10s", **tally.take()}), flush=True)


if __name__ == "__main__":
    main()
