"""A real Prometheus (Debian's) scraping the real services: the PromQL the detector will use returns
what the test caused."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from shop import procs

from .conftest import wait_for

PROMETHEUS = "/usr/bin/prometheus"


def start_prometheus(tmp_path: Path, scrape_configs: list[dict],
                     rule_files: list[str] | None = None) -> tuple[procs.ManagedProcess, str]:
    """Prometheus scraping (and evaluating `rule_files`) every second; returns the process (started,
    not yet ready) and its URL."""
    config: dict[str, object] = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                 "scrape_configs": scrape_configs}
    if rule_files:
        config["rule_files"] = rule_files
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = procs.free_port()
    prom = procs.ManagedProcess(
        "prometheus", [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path / "prometheus.log", None, f"http://127.0.0.1:{port}/-/ready").start()
    return prom, f"http://127.0.0.1:{port}"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """Prometheus scraping three jobs every second; returns its URL and the targets' ports."""
    targets = {"errors": procs.free_port(), "slow": procs.free_port(), "fast": procs.free_port()}
    prom, url = start_prometheus(tmp_path, [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                                            for job, port in targets.items()])
    try:
        prom.wait_healthy(60)
        yield url, targets
    finally:
        prom.stop()


def query(prom: str, expr: str) -> float | None:
    result = httpx.get(f"{prom}/api/v1/query", params={"query": expr}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_error_ratio_and_p95_match_what_the_test_caused(prometheus, tmp_path: Path) -> None:
    prom, ports = prometheus
    started = []
    try:
        for job, env in (("errors", {"SHOP_FAULT_HOOKS": "true"}), ("slow", {"SHOP_FAULT_LATENCY_MS": "200"}),
                         ("fast", {})):
            started.append(procs.service("product", ports[job], tmp_path / job, **env).start().wait_healthy())
        errors = f"http://127.0.0.1:{ports['errors']}"
        for _ in range(30):
            assert httpx.get(f"{errors}/api/products").status_code == 200
        httpx.post(f"{errors}/fault/crash").raise_for_status()
        for _ in range(10):
            assert httpx.get(f"{errors}/api/products").status_code == 503
        with ThreadPoolExecutor(10) as pool:
            for job in ("slow", "fast"):
                url = f"http://127.0.0.1:{ports[job]}/api/products"
                codes = list(pool.map(lambda _, url=url: httpx.get(url, timeout=10).status_code, range(20)))
                assert codes == [200] * 20

        api = 'route=~"/api/.*"'
        wait_for(lambda: query(prom, f'sum(shop_http_requests_total{{job="errors",{api}}})') == 40
                 and query(prom, f'sum(shop_http_request_duration_seconds_count{{job=~"slow|fast",{api}}})') == 40,
                 timeout=30, interval=0.5, what="Prometheus to scrape every request")

        ratio = query(prom, f'sum(shop_http_requests_total{{job="errors",{api},code=~"5.."}})'
                            f' / sum(shop_http_requests_total{{job="errors",{api}}})')
        assert ratio == pytest.approx(10 / 40)

        def p95(job: str) -> float | None:
            return query(prom, "histogram_quantile(0.95, sum by (le) (shop_http_request_duration_seconds_bucket"
                               f'{{job="{job}",route="/api/products"}}))')

        # Every slow request took 200 ms plus a little: all in the (0.2, 0.25] bucket, so P95 is
        # interpolated inside it; the fast ones stay far below the 200 ms line.
        assert 0.2 < p95("slow") <= 0.25
        assert p95("fast") < 0.1
    finally:
        for p in started:
            p.stop()


def test_one_set_of_queries_reads_every_namespace_apart(tmp_path: Path) -> None:
    """The detector's per-cycle snapshot: the same PromQL it runs, grouped by namespace, against a
    real Prometheus scraping two product services labelled as two namespaces: one saturated
    (a one-connection pool, queries queueing), one failing. Neither leaks into the other."""
    import threading
    import time

    from sre_operator.adapters.prometheus import PromSnapshot, fetch_signals, prometheus_client

    ports = {"ns-a": procs.free_port(), "ns-b": procs.free_port()}
    prom_proc, url = start_prometheus(tmp_path, [{"job_name": "kubernetes-pods", "static_configs": [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": ns, "app": "product"}}
        for ns, port in ports.items()]}])
    services = [procs.service("product", ports["ns-a"], tmp_path / "a", SHOP_DB_POOL_SIZE="1",
                              SHOP_DB_QUERY_MS="100").start(),
                procs.service("product", ports["ns-b"], tmp_path / "b", SHOP_FAULT_HOOKS="true").start()]
    try:
        prom_proc.wait_healthy(60)
        for s in services:
            s.wait_healthy()
        b = f"http://127.0.0.1:{ports['ns-b']}"
        httpx.post(f"{b}/fault/crash").raise_for_status()
        stop = threading.Event()

        def hammer() -> None:  # 8 clients on one connection of 100 ms: always 7 waiting
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    c.get(f"http://127.0.0.1:{ports['ns-a']}/api/products")
                    c.get(f"{b}/api/products")
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(6)
        prom = prometheus_client(url)

        def read() -> dict | None:
            out = fetch_signals(prom, url, ["ns-a", "ns-b"], "1m")
            a, bb = out["ns-a"].get("product", {}), out["ns-b"].get("product", {})
            return out if a.get("saturation") and a.get("rate") and bb.get("rate") else None
        out = wait_for(read, timeout=30, interval=1, what="both namespaces in one reading")
        stop.set()
        for t in threads:
            t.join()
        a, bb = out["ns-a"]["product"], out["ns-b"]["product"]
        assert a["saturation"] > 0.8 and a["waiting"] > 2, a
        assert a["error_ratio"] == 0.0 and "saturation" not in bb
        assert bb["error_ratio"] == 1.0, bb
        assert a["up"] == 1.0 and bb["up"] == 1.0
        assert out["ns-a"]["gateway"] == {"rate": 0.0, "error_ratio": 0.0}  # no gateway scraped: zeros, not errors
        # A Prometheus that does not answer: the snapshot says so; nothing reads as healthy.
        down = PromSnapshot.take(prometheus_client("http://127.0.0.1:9", 1), "http://127.0.0.1:9", ["ns-a"])
        assert down.error and down.by_namespace == {}
    finally:
        for s in services:
            s.stop()
        prom_proc.stop()


def test_cpu_throttling_is_read_per_service_from_cadvisors_figures(tmp_path: Path) -> None:
    """The detector's CPU-throttling query against a real Prometheus scraping cAdvisor-shaped
    counters (as the kubelet's /metrics/cadvisor serves them) and the pods' own targets, which name
    each pod's service: a settled pod throttled in half its periods reads 0.5; a pod that started
    seconds ago (its start hits the limit) and one that barely ran do not count."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sre_operator.adapters.prometheus import fetch_signals, prometheus_client

    t0 = time.time()
    # pod: (service, started seconds before t0, periods a second, throttled periods a second)
    pods = {"product-a": ("product", 600, 10.0, 5.0), "product-new": ("product", 0, 10.0, 10.0),
            "payment-b": ("payment", 600, 10.0, 0.0), "payment-idle": ("payment", 600, 0.5, 0.5)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            lines = []
            if self.path == "/cadvisor":
                up = time.time() - t0
                for pod, (_, started, periods, throttled) in pods.items():
                    lab = f'{{namespace="shop",pod="{pod}",container="app"}}'
                    lines += [f"container_cpu_cfs_periods_total{lab} {periods * up:.1f}",
                              f"container_cpu_cfs_throttled_periods_total{lab} {throttled * up:.1f}",
                              f"container_start_time_seconds{lab} {t0 - started:.0f}"]
                    # The pod's own cgroup (no container name) is not a container: never counted.
                    lines.append(f'container_cpu_cfs_throttled_periods_total{{namespace="shop",pod="{pod}",'
                                 f'container=""}} {100 * up:.1f}')
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    prom_proc, url = start_prometheus(tmp_path, [
        {"job_name": "kubernetes-cadvisor", "metrics_path": "/cadvisor", "static_configs": [{"targets": [address]}]},
        {"job_name": "kubernetes-pods", "metrics_path": "/empty", "static_configs": [
            {"targets": [address], "labels": {"namespace": "shop", "pod": pod, "app": service}}
            for pod, (service, *_) in pods.items()]}])
    try:
        prom_proc.wait_healthy(60)
        prom = prometheus_client(url)

        def read() -> dict | None:
            out = fetch_signals(prom, url, ["shop"], "10s")["shop"]
            both = all("cpu_throttled" in out.get(s, {}) for s in ("product", "payment"))
            return out if both and time.time() - t0 > 6 else None
        out = wait_for(read, timeout=40, interval=1, what="both services' throttling in one reading")
        assert out["product"]["cpu_throttled"] == pytest.approx(0.5, abs=0.05), out
        assert out["payment"]["cpu_throttled"] == pytest.approx(0.0, abs=0.01), out
        assert "cpu_throttled" not in out["gateway"]
    finally:
        server.shutdown()
        prom_proc.stop()


def test_one_slow_or_failed_scrape_is_not_a_service_down_but_every_scrape_failing_is(tmp_path: Path) -> None:
    """The detector's `up` against a real Prometheus scraping every second: a target that fails one
    scrape (as a busy process answering late does) still reads up; one that fails every scrape of a
    few seconds reads down."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sre_operator.adapters.prometheus import fetch_signals, prometheus_client

    state = {"fail": 0, "forever": False}  # scrapes still to fail; fail every one from now on

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            failing = state["forever"] or state["fail"] > 0
            state["fail"] = max(0, state["fail"] - 1)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(b"shop_db_pool_size 1\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prom_proc, url = start_prometheus(tmp_path, [{"job_name": "kubernetes-pods", "static_configs": [
        {"targets": [f"127.0.0.1:{server.server_address[1]}"], "labels": {"namespace": "shop", "app": "payment"}}]}])
    try:
        prom_proc.wait_healthy(60)
        prom = prometheus_client(url)

        def up() -> float | None:
            return fetch_signals(prom, url, ["shop"], "10s")["shop"].get("payment", {}).get("up")
        wait_for(lambda: query(url, 'count_over_time(up{job="kubernetes-pods"}[10s]) >= 5'), timeout=30,
                 what="five scrapes")
        state["fail"] = 1
        wait_for(lambda: query(url, 'up{job="kubernetes-pods"}') == 0, timeout=10, interval=0.05,
                 what="the failed scrape")
        assert up() == 1.0  # read while the last scrape is the failed one
        state["forever"] = True
        wait_for(lambda: up() == 0.0, timeout=20, interval=0.5, what="every scrape failing to read down")
    finally:
        server.shutdown()
        prom_proc.stop()
