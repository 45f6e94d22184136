"""`python -m shop.traffic`: shoppers through the gateway, a few requests a second, forever.

Environment: `SHOP_GATEWAY_URL` (default http://gateway), `SHOP_TRAFFIC_RPS` (requests a second,
default 3), `SHOP_TRAFFIC_ORDER_EVERY` (one order every N requests, default 4). Each outcome is
logged as one JSON line, so `kubectl logs deploy/traffic` shows what a customer saw."""
from __future__ import annotations

import itertools
import json
import os
import time

import httpx

PRODUCTS = ("P001", "P002", "P004")


def main() -> None:
    base = os.environ.get("SHOP_GATEWAY_URL", "http://gateway").rstrip("/")
    rps = max(0.1, float(os.environ.get("SHOP_TRAFFIC_RPS", "3")))
    every = max(1, int(os.environ.get("SHOP_TRAFFIC_ORDER_EVERY", "4")))
    print(json.dumps({"msg": "traffic starting", "gateway": base, "rps": rps}), flush=True)
    with httpx.Client(timeout=5) as client:
        for i in itertools.count():
            started = time.monotonic()
            if i % every == 0:
                pid = PRODUCTS[(i // every) % len(PRODUCTS)]
                method, path, body = "POST", "/api/orders", {"product_id": pid, "qty": 1, "customer_name": "demo"}
            else:
                method, path, body = "GET", "/api/products", None
            try:
                code = client.request(method, base + path, json=body).status_code
            except httpx.HTTPError as exc:
                code = 0
                print(json.dumps({"msg": "request failed", "path": path, "error": type(exc).__name__}), flush=True)
            took = time.monotonic() - started
            if code >= 500 or code == 0 or i % 50 == 0:
                print(json.dumps({"msg": "request", "method": method, "path": path, "status": code,
                                  "ms": round(took * 1000, 1), "n": i}), flush=True)
            time.sleep(max(0.0, 1.0 / rps - took))


if __name__ == "__main__":
    main()
