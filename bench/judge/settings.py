"""The benchmark's settings (never the operator's: the operator runs with its defaults)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SLO:
    """What the benchmark calls a healthy shop, over one window of its own requests."""

    max_error_ratio: float = 0.05  # every request: no answer, 5xx, or an unexpected status
    max_order_error_ratio: float = 0.10  # orders alone (fewer of them: one failure weighs more)
    max_p95_seconds: float = 0.5
    window_seconds: float = 30.0  # the SLO must hold for a full window
    min_requests: int = 20  # fewer requests in a window prove nothing


@dataclass(frozen=True)
class Settings:
    slo: SLO = SLO()
    # Healthy traffic with the operator on before the fault: more than one SLO window (the baseline
    # judged) and many detector cycles; its 1m rates are already healthy (the quiet phase before it,
    # operator off, lasts longer than they reach back).
    baseline_seconds: float = 45.0
    timeout_seconds: float = 300.0  # fault → healed, or the run fails
    poll_seconds: float = 3.0  # how often the effect check and the Incidents are read
    control_minutes: float = 10.0  # no-fault control: a healthy shop under traffic, the operator on
    fault_duration: str = "2h"  # FaultScenario duration: far beyond any run, so it never reverts itself
    read_rps: float = 2.5  # catalogue reads a second
    order_rps: float = 0.5  # orders a second (stock is finite: see traffic.py)
    request_timeout_seconds: float = 5.0

    def as_dict(self) -> dict:
        return asdict(self)
