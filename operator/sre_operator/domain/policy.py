"""The operator's policies as plain values: detection thresholds, blast-radius caps, the validation
SLO and how to reach a model. `settings.py` builds them from the environment once; the decisions take
them as arguments. No behaviour here."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from .clock import parse_duration
from .metrics import WINDOW


@dataclass(frozen=True)
class Thresholds:
    error_ratio: float = 0.10
    p95_seconds: float = 0.5
    min_request_rate: float = 0.05  # req/s below which ratios and quantiles are noise
    unrouted_ratio: float = 0.5  # of one API route's requests answered 404 by the gateway itself
    saturation: float = 0.9  # share of the connection pool busy, with queries waiting
    # Share of the CPU periods a pod ran in that its limit cut short (kube-prometheus's CPUThrottlingHigh: 25 %).
    cpu_throttled_ratio: float = 0.25
    restarts: int = 3  # in the lookback window
    stuck_seconds: float = 45.0  # a pod not Ready for longer is stuck (a rollout that will not finish)
    # A pod younger than the rate window has too few scrapes to be judged (its predecessor's requests still count).
    fresh_pod_seconds: float = parse_duration(WINDOW)
    for_cycles: int = 2
    cooldown_seconds: float = 120.0


@dataclass(frozen=True)
class Caps:
    max_concurrent: int = 3
    max_actions_per_hour: int = 6


@dataclass(frozen=True)
class Slo:
    max_error_ratio: float = 0.05
    max_p95_seconds: float = 0.5
    # Noise allowed before a change counts as better or worse.
    error_ratio_margin: float = 0.02
    p95_margin: float = 0.2  # relative


@dataclass(frozen=True)
class LlmConfig:
    base_url: str | None
    api_key: SecretStr  # shown as asterisks in a repr or an error text
    model: str
    timeout_seconds: float = 30.0
    max_retries: int = 1
    max_tokens: int = 2000
    prompt_usd_per_million: float = 0.0  # 0: cost unknown, not reported
    completion_usd_per_million: float = 0.0
