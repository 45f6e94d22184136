"""Entry point: `python -m shop.gateway_exporter` (the gateway pod's sidecar).

Environment: `SHOP_ACCESS_LOG` (default /var/log/gateway/access.json), `SHOP_HOST` (0.0.0.0),
`SHOP_PORT` (9113). Serves `/metrics`.
"""
from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from .tailer import GatewayMetrics, follow


def main() -> None:
    path = Path(os.environ.get("SHOP_ACCESS_LOG", "/var/log/gateway/access.json"))
    host = os.environ.get("SHOP_HOST", "0.0.0.0")  # noqa: S104 - scraped on the pod's IP
    port = int(os.environ.get("SHOP_PORT", "9113"))
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    start_http_server(port, addr=host, registry=registry)
    print(f'{{"msg": "gateway exporter serving", "port": {port}, "log": "{path}"}}', flush=True)
    follow(path, metrics)


if __name__ == "__main__":
    main()
