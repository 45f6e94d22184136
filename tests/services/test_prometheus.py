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


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """Prometheus scraping three jobs every second; returns its URL and the targets' ports."""
    targets = {"errors": procs.free_port(), "slow": procs.free_port(), "fast": procs.free_port()}
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                                 for job, port in targets.items()]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = procs.free_port()
    prom = procs.ManagedProcess(
        "prometheus", [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path / "prometheus.log", None, f"http://127.0.0.1:{port}/-/ready").start()
    try:
        prom.wait_healthy(60)
        yield f"http://127.0.0.1:{port}", targets
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
                codes = list(pool.map(lambda _: httpx.get(f"http://127.0.0.1:{ports[job]}/api/products",
                                                          timeout=10).status_code, range(20)))
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
