"""`make demo` (for now): the shop and its NGINX gateway as local processes on 127.0.0.1.

    python -m shop.localrun [--gateway-port 80] [--data-dir .data]

Starts product, payment, order and the gateway, waits until each is healthy, prints the URLs and
the seed README's curl examples, and stops everything on Ctrl-C or SIGTERM. Data persists in the
data dir across runs.
"""
from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from pathlib import Path

from . import procs
from .common.settings import DEFAULT_PORTS


def _can_bind(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop.localrun", description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-port", type=int, default=None,
                        help="default: 80 as in the seed's examples when it can be bound (root), else 8080")
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--fault-hooks", action="store_true", help="mount the /fault endpoints")
    args = parser.parse_args(argv)
    if args.gateway_port is None:
        args.gateway_port = 80 if _can_bind(80) else 8080
    data = args.data_dir.resolve()
    env = {"SHOP_FAULT_HOOKS": "true"} if args.fault_hooks else {}
    ports = dict(DEFAULT_PORTS)
    started: list[procs.ManagedProcess] = []

    def stop_all(*_: object) -> None:
        for p in reversed(started):
            p.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        for name in ("product", "payment", "order"):
            extra = {"SHOP_PRODUCT_URL": f"http://127.0.0.1:{ports['product']}",
                     "SHOP_PAYMENT_URL": f"http://127.0.0.1:{ports['payment']}"} if name == "order" else {}
            started.append(procs.service(name, ports[name], data, **env, **extra).start())
        started.append(procs.gateway(args.gateway_port, data / "gateway",
                                     order=f"127.0.0.1:{ports['order']}",
                                     product=f"127.0.0.1:{ports['product']}").start())
        for p in started:
            p.wait_healthy()
    except Exception as exc:  # noqa: BLE001 - report and stop what started
        print(f"localrun: {exc}", file=sys.stderr)
        for p in reversed(started):
            p.stop()
        return 1
    gw = "http://localhost" if args.gateway_port == 80 else f"http://localhost:{args.gateway_port}"
    print(f"""
The shop is running (logs and data in {data}):
  gateway  {gw}   (GET /api/products[/{{id}}], POST /api/orders, GET /api/orders/{{id}}, /nginx-health)
  order    http://127.0.0.1:{ports['order']}    product http://127.0.0.1:{ports['product']}    payment http://127.0.0.1:{ports['payment']}
  metrics  http://127.0.0.1:{ports['order']}/metrics (and each service's /metrics)

Try:
  curl {gw}/api/products
  curl {gw}/api/orders
  curl -X POST {gw}/api/orders -H 'Content-Type: application/json' \\
       -d '{{"product_id": "P001", "qty": 1, "customer_name": "Demo User"}}'

Ctrl-C stops everything.""", flush=True)
    try:
        while all(p.alive for p in started):
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    else:
        dead = [p.name for p in started if not p.alive]
        print(f"localrun: {', '.join(dead)} exited; stopping", file=sys.stderr)
        return 1
    finally:
        for p in reversed(started):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
