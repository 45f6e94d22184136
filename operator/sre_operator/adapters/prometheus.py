"""The Prometheus adapter: one set of PromQL queries for every signal of every watched namespace,
read through prometheus-api-client and boiled down to {namespace: {service: {signal: value}}}.
A Prometheus that does not answer raises `PrometheusUnavailable`: missing data, never a healthy shop."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException
from urllib3.util.retry import Retry

from ..domain.clock import parse_duration
from ..domain.metrics import WINDOW, MetricsReading

__all__ = ["WINDOW", "PromSnapshot", "PrometheusMetrics", "PrometheusUnavailable", "fetch_signals",
           "prometheus_client"]

# One service's reading: signal name → value (numbers; `unrouted_route` is a route).
Signals = dict[str, Any]


class PrometheusUnavailable(RuntimeError):
    pass


def prometheus_client(url: str, timeout: float = 5.0) -> PrometheusConnect:
    # One quick retry: the detector reads again on its next cycle anyway, and a Prometheus that
    # is down must be reported as missing data in seconds, not after a long backoff.
    return PrometheusConnect(url=url, disable_ssl=True, timeout=int(timeout) + 1,
                             retry=Retry(total=1, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                                         allowed_methods=("GET", "POST")))


UP_WINDOW = "4s"  # four scrapes at the observability chart's 1 s
# cAdvisor is scraped every 10 s (its answer is large): a rate needs two of its samples, so CPU
# throttling keeps its own window of three scrapes, whatever the requests' window.
THROTTLE_WINDOW = "30s"
# CPU throttling is judged on pods whose containers started this long before the rate window began,
# and that ran in at least this many CPU periods a second: a process's start (imports, warm-up) may
# hit its limit for a few seconds, which is not a limit too low; nor are a few periods of an idle container.
THROTTLE_SETTLED_SECONDS = 30
THROTTLE_MIN_PERIODS = 1.0


def _queries(sel: str, window: str) -> dict[str, str]:
    """PromQL for every signal, grouped by namespace (one query set serves every namespace)."""
    api = f'{sel},route=~"/api/.*"'
    gw = f'{sel},route!="other"'
    ctr = f'{sel},container!=""'  # cAdvisor's containers (the pod's own cgroup has no container name)
    settled = THROTTLE_SETTLED_SECONDS + parse_duration(THROTTLE_WINDOW)
    return {
        "rate": f'sum by (namespace, service) (rate(shop_http_requests_total{{{api}}}[{window}]))',
        "errors": f'sum by (namespace, service) (rate(shop_http_requests_total{{{api},code=~"5.."}}[{window}]))',
        "p95": f'histogram_quantile(0.95, sum by (namespace, service, le) (rate('
               f'shop_http_request_duration_seconds_bucket{{{api}}}[{window}])))',
        "gw_rate": f'sum by (namespace) (rate(gateway_http_requests_total{{{gw}}}[{window}]))',
        "gw_errors": f'sum by (namespace) (rate(gateway_http_requests_total{{{gw},code=~"5.."}}[{window}]))',
        "gw_p95": f'histogram_quantile(0.95, sum by (namespace, le) (rate('
                  f'gateway_http_request_duration_seconds_bucket{{{gw}}}[{window}])))',
        # Down: no instance answered any scrape of the last UP_WINDOW (one slow answer to a scrape is not down).
        "up": f'max by (namespace, app) (max_over_time(up{{{sel},job="kubernetes-pods"}}[{UP_WINDOW}]))',
        # Requests on an API route that no gateway location served, per route.
        "unrouted": f'sum by (namespace, route) (rate(gateway_unrouted_requests_total{{{sel}}}[{window}]))',
        "gw_route_rate": f'sum by (namespace, route) (rate(gateway_http_requests_total{{{gw}}}[{window}]))',
        # 5xx per route: one route failing whole (orders, a sixth of the requests) is an outage long
        # before the gateway's overall ratio says so.
        "gw_route_errors": f'sum by (namespace, route) (rate(gateway_http_requests_total{{{gw},code=~"5.."}}'
                           f'[{window}]))',
        # Share of the database connections busy over the window (1: every query queued for one).
        "pool_busy": f'sum by (namespace, service) (avg_over_time(shop_db_pool_in_use{{{sel}}}[{window}]))'
                     f' / sum by (namespace, service) (shop_db_pool_size{{{sel}}} > 0)',
        "pool_waiting": f'sum by (namespace, service) (avg_over_time(shop_db_pool_waiting{{{sel}}}[{window}]))',
        # The business outcome: orders placed, and those that failed for a reason other than stock.
        "orders": f'sum by (namespace, service) (rate(shop_orders_total{{{sel}}}[{window}]))',
        "orders_failed": f'sum by (namespace, service) (rate(shop_orders_total{{{sel},outcome="failed",'
                         f'reason!="out_of_stock"}}[{window}]))',
        # Per service, its worst pod's share of CPU periods cut short by the CPU limit (cAdvisor), the
        # pod named after its service through the pods' own scrape target (`app`).
        "cpu_throttled": f'max by (namespace, app) ((sum by (namespace, pod) ('
                         f'rate(container_cpu_cfs_throttled_periods_total{{{ctr}}}[{THROTTLE_WINDOW}]))'
                         f' / (sum by (namespace, pod) ('
                         f'rate(container_cpu_cfs_periods_total{{{ctr}}}[{THROTTLE_WINDOW}]))'
                         f' >= {THROTTLE_MIN_PERIODS}))'
                         f' * on (namespace, pod) group_left (app) (max by (namespace, pod, app) ('
                         f'up{{{sel},job="kubernetes-pods"}}) * 0 + 1)'
                         f' and on (namespace, pod) (time() - max by (namespace, pod) ('
                         f'container_start_time_seconds{{{ctr}}}) > {settled:g}))',
    }


def _run(prom: PrometheusConnect, url: str, promql: str, timeout: float) -> dict[tuple[str, str], float]:
    """{(namespace, service|app|route): value}; NaN (no traffic) stays absent."""
    try:
        result = prom.custom_query(promql, params={"timeout": f"{int(timeout)}s"})
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        raise PrometheusUnavailable(f"Prometheus at {url}: {exc}") from exc
    out = {}
    for r in result:
        m = r["metric"]
        key = (m.get("namespace", ""), m.get("service") or m.get("app") or m.get("route") or "")
        try:
            value = float(r["value"][1])
        except (TypeError, ValueError):
            continue
        if value == value:
            out[key] = value
    return out


def _ratio(part: float, whole: float) -> float:
    # Two rate() queries extrapolate apart: 5xx/all can come out as 1.004. A ratio stays in [0, 1].
    return min(1.0, part / whole) if whole > 0 else 0.0


def fetch_signals(prom: PrometheusConnect, url: str, namespaces: list[str], window: str = WINDOW,
                  timeout: float = 5.0) -> dict[str, dict[str, Signals]]:
    """Every signal of every namespace in one set of queries: {namespace: {service: {...}}}."""
    names = "|".join(sorted(namespaces))
    sel = f'namespace=~"{names}"' if len(namespaces) > 1 else f'namespace="{namespaces[0]}"'
    raw = {k: _run(prom, url, q, timeout) for k, q in _queries(sel, window).items()}
    out: dict[str, dict[str, Signals]] = {ns: {"gateway": {"rate": 0.0, "error_ratio": 0.0}} for ns in namespaces}
    for fold in (_services, _gateway, _capacity_and_business):
        fold(raw, out)
    return out


Raw = dict[str, dict[tuple[str, str], float]]


def _services(raw: Raw, out: dict[str, dict[str, Signals]]) -> None:
    """Rate, 5xx ratio, P95 and scrape state of each service."""
    for (ns, svc), rate in raw["rate"].items():
        if ns in out:
            errors = raw["errors"].get((ns, svc), 0.0)
            out[ns].setdefault(svc, {}).update(rate=rate, error_ratio=_ratio(errors, rate))
    for (ns, svc), p95 in raw["p95"].items():
        if ns in out:
            out[ns].setdefault(svc, {})["p95"] = p95
    for (ns, app), up in raw["up"].items():
        if ns in out:
            out[ns].setdefault(app, {})["up"] = up


def _gateway(raw: Raw, out: dict[str, dict[str, Signals]]) -> None:
    """The gateway's rate, 5xx ratio and P95, its route with the highest 5xx ratio, and its worst
    route that no location serves."""
    for (ns, _), rate in raw["gw_rate"].items():
        if ns in out:
            errors = raw["gw_errors"].get((ns, ""), 0.0)
            out[ns]["gateway"].update(rate=rate, error_ratio=_ratio(errors, rate))
    for (ns, _), p95 in raw["gw_p95"].items():
        if ns in out:
            out[ns]["gateway"]["p95"] = p95
    routes: dict[str, list[tuple[str, float]]] = {}  # per namespace, once: not every route for every namespace
    for (ns, route), rate in raw["gw_route_rate"].items():
        if ns in out and rate > 0:
            routes.setdefault(ns, []).append((route, rate))
    for ns, mine in routes.items():
        gw = out[ns]["gateway"]
        _, gw["unrouted_ratio"], gw["unrouted_route"] = _worst_route(raw["unrouted"], ns, mine)
        gw["route_rate"], gw["route_error_ratio"], gw["route_error_route"] = _worst_route(
            raw["gw_route_errors"], ns, mine)


def _worst_route(part: dict[tuple[str, str], float], ns: str,
                 routes: list[tuple[str, float]]) -> tuple[float, float, str]:
    """(rate, ratio, route) of the namespace's route where `part` (unrouted, 5xx) is the largest share."""
    ratio, rate, route = max((_ratio(part.get((ns, r), 0.0), rate), rate, r) for r, rate in routes)
    return rate, ratio, route


def _capacity_and_business(raw: Raw, out: dict[str, dict[str, Signals]]) -> None:
    """Database pool saturation, CPU throttling, and the share of orders that failed (stock aside)."""
    for (ns, svc), busy in raw["pool_busy"].items():
        if ns in out:
            out[ns].setdefault(svc, {}).update(saturation=busy, waiting=raw["pool_waiting"].get((ns, svc), 0.0))
    for (ns, svc), placed in raw["orders"].items():
        if ns in out and placed > 0:
            out[ns].setdefault(svc, {}).update(
                orders_rate=placed, orders_failed_ratio=_ratio(raw["orders_failed"].get((ns, svc), 0.0), placed))
    for (ns, svc), share in raw["cpu_throttled"].items():
        if ns in out:
            out[ns].setdefault(svc, {})["cpu_throttled"] = min(1.0, share)


class PromSnapshot(MetricsReading):
    """One reading of every watched namespace, taken once per detector cycle (`error`: Prometheus
    did not answer, and every namespace's reading is missing, not healthy)."""

    @classmethod
    def take(cls, prom: PrometheusConnect, url: str, namespaces: list[str], window: str = WINDOW,
             timeout: float = 5.0) -> PromSnapshot:
        try:
            return cls(window, fetch_signals(prom, url, namespaces, window, timeout))
        except PrometheusUnavailable as exc:
            return cls(window, {}, str(exc))


@dataclass
class PrometheusMetrics:
    """`domain.metrics.Metrics` over a Prometheus HTTP API."""
    url: str
    timeout: float = 5.0

    def __post_init__(self) -> None:
        self.client = prometheus_client(self.url, self.timeout)

    def read(self, namespaces: Sequence[str], window: str = WINDOW) -> MetricsReading:
        if not namespaces:
            return MetricsReading(window, {})
        return PromSnapshot.take(self.client, self.url, list(namespaces), window, self.timeout)
