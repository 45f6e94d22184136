"""The metrics port: one reading of the SLO figures of some namespaces over a rate window, as plain
numbers per service. `adapters/prometheus.py` is the real source; unit tests hand a reading in.

A reading whose `error` is set is missing data (the source did not answer), never a healthy shop."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# service → signal → value: rate, error_ratio, p95, up, unrouted_ratio, unrouted_route (a route, text),
# saturation, waiting, cpu_throttled.
ServiceFigures = dict[str, dict[str, Any]]
WINDOW = "15s"  # the rate window of every reading but validation's (which measures from its own start):
# fifteen scrapes at the observability chart's 1 s. A fault's requests must pass a share of the window
# (10 % for the 5xx ratio, 5 % for the P95) before it shows: the shorter the window, the sooner (a 1-minute
# window took twice as long as 30 s to show an outage; 30 s held the seeds' detection at ~10 s)
QUIET: ServiceFigures = {"gateway": {"rate": 0.0, "error_ratio": 0.0}}  # a namespace nothing was measured in


@dataclass
class MetricsReading:
    window: str
    by_namespace: dict[str, ServiceFigures] = field(default_factory=dict)
    error: str = ""

    def of(self, namespace: str) -> ServiceFigures | None:
        """The namespace's figures; None when the source did not answer (missing, not healthy)."""
        if self.error:
            return None
        figures: ServiceFigures | None = self.by_namespace.get(namespace)
        return figures if figures is not None else {k: dict(v) for k, v in QUIET.items()}


class Metrics(Protocol):
    def read(self, namespaces: Sequence[str], window: str) -> MetricsReading:
        """Every namespace's figures over `window` (a PromQL range: `1m`, `41s`); never raises for a
        source that does not answer (`error` says why)."""
