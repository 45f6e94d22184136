"""Follow a JSON-lines log file the way `tail -F` does (truncation and rotation included) and fold
each line into gateway metrics."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

# The gateway's public routes. Anything else is "other": a 404 there is no route missing from the config.
ROUTES = ("/api/orders", "/api/products")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0,
           3.0, 5.0, 10.0)


def route_of(uri: str) -> str:
    path = uri.split("?", 1)[0]
    for r in ROUTES:
        if path == r or path.startswith(r + "/"):
            return r
    return "other"


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("gateway_http_requests_total", "Requests answered by the gateway",
                                ["route", "code"], registry=registry)
        self.latency = Histogram("gateway_http_request_duration_seconds", "Gateway request time",
                                 ["route"], buckets=BUCKETS, registry=registry)
        self.upstream_errors = Counter("gateway_upstream_errors_total",
                                       "Requests whose upstream failed or answered 5xx",
                                       ["route", "upstream_status"], registry=registry)
        self.unrouted = Counter("gateway_unrouted_requests_total",
                                "Requests on an API route that no location served: NGINX answered 404 "
                                "itself, no upstream was asked (a route missing from the config)",
                                ["route"], registry=registry)
        self.malformed = Counter("gateway_log_malformed_lines_total", "Access log lines that were not JSON",
                                 registry=registry)

    def observe(self, line: str) -> None:
        try:
            entry = json.loads(line)
            status = int(entry["status"])
            route = route_of(str(entry.get("uri", "")))
            took = float(entry.get("request_time") or 0.0)
        except (ValueError, KeyError, TypeError):
            self.malformed.inc()
            return
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(took)
        # With retries NGINX lists every upstream answer ("502, 200"); the last one is what counted.
        upstream = str(entry.get("upstream_status") or "").split(",")[-1].strip()
        if status >= 500 and (not upstream or upstream.startswith("5") or upstream == "-"):
            self.upstream_errors.labels(route, upstream or "none").inc()
        if status == 404 and route != "other" and upstream in ("", "-"):
            self.unrouted.labels(route).inc()


class Follower:
    """Reads complete lines appended to `path`; reopens when the file is replaced or truncated."""

    def __init__(self, path: Path, from_start: bool = True) -> None:
        self.path = path
        self.from_start = from_start
        self._fh = None
        self._inode: int | None = None
        self._partial = ""

    def _open(self) -> bool:
        try:
            fh = open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115 - held open while tailing
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        if not self.from_start and self._inode is None:
            fh.seek(0, os.SEEK_END)
        self._fh, self._inode, self._partial = fh, st.st_ino, ""
        return True

    def read_lines(self) -> list[str]:
        if self._fh is None and not self._open():
            return []
        if self._fh is None:  # _open() just set it
            return []
        try:
            st = os.stat(self.path)
            if st.st_ino != self._inode or st.st_size < self._fh.tell():
                rest = self._fh.read()
                self._fh.close()
                self._fh = None
                lines = self._split(rest)
                self.from_start = True
                self._open()
                return lines + self.read_lines()
        except FileNotFoundError:
            pass
        return self._split(self._fh.read())

    def _split(self, chunk: str) -> list[str]:
        data = self._partial + chunk
        *lines, self._partial = data.split("\n")
        return [ln for ln in lines if ln.strip()]


def follow(path: Path, metrics: GatewayMetrics, interval: float = 0.25) -> None:
    follower = Follower(path)
    while True:
        for line in follower.read_lines():
            metrics.observe(line)
        time.sleep(interval)
