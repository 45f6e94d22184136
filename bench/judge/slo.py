"""Pure: the benchmark's own requests, in windows, against its own SLO."""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .settings import SLO

# A request's outcome: ok; error (no answer, 5xx, an unexpected status); stockout (the shop refused an
# order for lack of stock: the business, not the platform, and kept apart from the error ratio).
OK, ERROR, STOCKOUT = "ok", "error", "stockout"


@dataclass(frozen=True)
class Sample:
    at: float  # wall clock (epoch seconds), comparable with the API's timestamps
    op: str  # "read" | "order"
    code: int  # HTTP status, 0 for no answer
    seconds: float
    outcome: str


@dataclass(frozen=True)
class WindowStats:
    start: float
    end: float
    requests: int
    errors: int
    error_ratio: float
    p95_seconds: float
    orders_attempted: int
    orders_confirmed: int
    order_error_ratio: float
    stockouts: int

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("error_ratio", "p95_seconds", "order_error_ratio"):
            d[k] = round(d[k], 4)
        return d


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def window(samples: Sequence[Sample], start: float, end: float) -> WindowStats:
    """Statistics of the samples with start <= at < end (samples sorted by `at`)."""
    times = [s.at for s in samples]
    mine = samples[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]
    judged = [s for s in mine if s.outcome != STOCKOUT]
    errors = sum(1 for s in judged if s.outcome == ERROR)
    orders = [s for s in judged if s.op == "order"]
    order_errors = sum(1 for s in orders if s.outcome == ERROR)
    return WindowStats(start=start, end=end, requests=len(judged), errors=errors,
                       error_ratio=errors / len(judged) if judged else 0.0,
                       p95_seconds=p95([s.seconds for s in judged]),
                       orders_attempted=len(orders), orders_confirmed=len(orders) - order_errors,
                       order_error_ratio=order_errors / len(orders) if orders else 0.0,
                       stockouts=len(mine) - len(judged))


def breaches(stats: WindowStats, slo: SLO) -> list[str]:
    """Why a window is not within the SLO (empty: it is)."""
    why = []
    if stats.requests < slo.min_requests:
        why.append(f"{stats.requests} requests < {slo.min_requests}")
    if stats.error_ratio > slo.max_error_ratio:
        why.append(f"error ratio {stats.error_ratio:.3f} > {slo.max_error_ratio}")
    if stats.orders_attempted and stats.order_error_ratio > slo.max_order_error_ratio:
        why.append(f"order error ratio {stats.order_error_ratio:.3f} > {slo.max_order_error_ratio}")
    if stats.p95_seconds > slo.max_p95_seconds:
        why.append(f"P95 {stats.p95_seconds:.3f}s > {slo.max_p95_seconds}s")
    return why


def meets(stats: WindowStats, slo: SLO) -> bool:
    return not breaches(stats, slo)


def effect_gone_throughout(readings: Sequence[tuple[float, bool]], start: float, end: float) -> bool:
    """The effect check held at the last reading at or before `start` and at every reading up to `end`."""
    before = [ok for at, ok in readings if at <= start]
    inside = [ok for at, ok in readings if start < at <= end]
    return bool(before) and before[-1] and all(inside)


def first_healed(samples: Sequence[Sample], readings: Sequence[tuple[float, bool]], after: float, slo: SLO,
                 until: float, step: float = 1.0) -> float | None:
    """The earliest t >= after such that the window [t, t + W) meets the SLO and the fault's effect is
    gone at every reading from t to t + W; only windows that end by `until` count. None: never."""
    t = after
    while t + slo.window_seconds <= until:
        end = t + slo.window_seconds
        if effect_gone_throughout(readings, t, end) and meets(window(samples, t, end), slo):
            return t
        t += step
    return None
