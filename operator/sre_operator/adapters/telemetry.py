"""The `Telemetry` port on prometheus-client: the operator's own metrics, in a registry of their own
(no process or platform collectors of the default one mixed in, and a test reads exactly these),
served on `/metrics` by `serve(port)`. The names are fixed in docs/design.md ("The operator's
metrics"). Label values come from the vocabulary (anything else is counted as `other`), so a
hand-made Incident cannot grow the series without bound; the model's name comes from the settings."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from enum import StrEnum
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..domain.vocabulary import TERMINAL, ActionType, Outcome, Phase, SymptomKind

PREFIX = "sre_operator"
# Detection takes breach_cycles × the interval (10 s by default) plus the scrape's own lag.
DETECT_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
# Mitigation: the settle window (30 s) at the least, a few attempts at the most.
MITIGATE_BUCKETS = (10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
# A cycle should end well within the interval (5 s): its upper buckets say "falling behind".
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


SINKS = ("webhook", "slack")


def _known(value: str, enum: type[StrEnum]) -> str:
    return value if value in enum.__members__.values() else "other"


OPEN_PHASES = [p.value for p in Phase if p not in TERMINAL]


class OpenIncidents(Collector):
    """The Incidents this process is handling, by phase, and how long the one longest in each phase
    has been there (what an alert on "AwaitingApproval for more than N minutes" reads). Computed
    when scraped from what the runner last said; every open phase is present, 0 when empty."""

    def __init__(self) -> None:
        self.open: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def set(self, incident: str, phase: str | None, since: float | None) -> None:
        with self.lock:
            if phase is None or phase not in OPEN_PHASES:
                self.open.pop(incident, None)
            else:
                self.open[incident] = (phase, since if since is not None else time.time())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(f"{PREFIX}_open_incidents", "Open Incidents this process handles, by phase",
                                  labels=["phase"])
        oldest = GaugeMetricFamily(f"{PREFIX}_oldest_incident_in_phase_seconds", "How long the open Incident "
                                   "longest in a phase has been in it (0: none in it)", labels=["phase"])
        now = time.time()
        with self.lock:
            entries = list(self.open.values())
        for phase in OPEN_PHASES:
            ages = [max(0.0, now - since) for p, since in entries if p == phase]
            count.add_metric([phase], len(ages))
            oldest.add_metric([phase], max(ages, default=0.0))
        yield count
        yield oldest


class PrometheusTelemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.incidents_opened = Counter(f"{PREFIX}_incidents_opened", "Incidents the pipeline took on, by symptom",
                                        ["symptom"], registry=r)
        self.time_to_detect = Histogram(f"{PREFIX}_time_to_detect_seconds",
                                        "From a symptom's onset to its Incident", buckets=DETECT_BUCKETS, registry=r)
        self.time_to_mitigate = Histogram(f"{PREFIX}_time_to_mitigate_seconds",
                                          "From a symptom's onset to its Incident validated Resolved",
                                          buckets=MITIGATE_BUCKETS, registry=r)
        self.transitions = Counter(f"{PREFIX}_phase_transitions", "Incidents moved into a phase", ["phase"],
                                   registry=r)
        self.actions = Counter(f"{PREFIX}_actions", "Mitigation actions by type and outcome (applied, failed, undone)",
                               ["type", "outcome"], registry=r)
        self.undos = Counter(f"{PREFIX}_undos", "Actions restored from their undo record, by outcome "
                             "(undone, failed, skipped)", ["outcome"], registry=r)
        self.llm_calls = Counter(f"{PREFIX}_llm_calls", "Calls to the model (triage and planning)", ["model"],
                                 registry=r)
        self.llm_tokens = Counter(f"{PREFIX}_llm_tokens", "Tokens the model's calls cost, by kind (prompt, completion)",
                                  ["model", "kind"], registry=r)
        self.llm_fallbacks = Counter(f"{PREFIX}_llm_fallbacks", "Questions to the model whose answer was not "
                                     "used (the rules decided)", ["model"], registry=r)
        self.detector_cycle_seconds = Histogram(f"{PREFIX}_detector_cycle_seconds", "One detector cycle over every "
                                                "watched namespace", buckets=CYCLE_BUCKETS, registry=r)
        self.watched_namespaces = Gauge(f"{PREFIX}_watched_namespaces", "Namespaces the detector reads", registry=r)
        self.metrics_source_up = Gauge(f"{PREFIX}_metrics_source_up", "1 while the detector's metrics source "
                                       "(Prometheus) answers, 0 while it reads Kubernetes signals only", registry=r)
        self.leader = Gauge(f"{PREFIX}_leader", "1 while this process holds the leader Lease and acts, 0 on standby",
                            registry=r)
        self.notifications = Counter(f"{PREFIX}_notifications", "Notices to a sink (webhook, slack) by outcome "
                                     "(delivered, failed: retries given up)", ["sink", "outcome"], registry=r)
        self.open_incidents = OpenIncidents()
        r.register(self.open_incidents)
        for phase in Phase:  # every phase present from the start: an alert's increase() sees the first one
            if phase != Phase.DETECTED:
                self.transitions.labels(phase=phase.value)

    def incident_opened(self, symptom: str, time_to_detect: float | None) -> None:
        self.incidents_opened.labels(symptom=_known(symptom, SymptomKind)).inc()
        if time_to_detect is not None:
            self.time_to_detect.observe(max(0.0, time_to_detect))

    def phase_changed(self, phase: str, time_to_mitigate: float | None = None) -> None:
        self.transitions.labels(phase=_known(phase, Phase)).inc()
        if time_to_mitigate is not None:
            self.time_to_mitigate.observe(max(0.0, time_to_mitigate))

    def action(self, action_type: str, outcome: str) -> None:
        self.actions.labels(type=_known(action_type, ActionType), outcome=_known(outcome, Outcome)).inc()

    def undo(self, outcome: str) -> None:
        self.undos.labels(outcome=_known(outcome, Outcome)).inc()

    def llm_call(self, model: str, calls: int, prompt_tokens: int, completion_tokens: int, fallback: bool) -> None:
        model = model[:100] or "unknown"
        self.llm_calls.labels(model=model).inc(max(0, calls))
        self.llm_tokens.labels(model=model, kind="prompt").inc(max(0, prompt_tokens))
        self.llm_tokens.labels(model=model, kind="completion").inc(max(0, completion_tokens))
        if fallback:
            self.llm_fallbacks.labels(model=model).inc()

    def detector_cycle(self, seconds: float, namespaces: int) -> None:
        self.detector_cycle_seconds.observe(max(0.0, seconds))
        self.watched_namespaces.set(namespaces)

    def metrics_source(self, up: bool) -> None:
        self.metrics_source_up.set(1 if up else 0)

    def leading(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def in_phase(self, incident: str, phase: str | None, since: float | None = None) -> None:
        self.open_incidents.set(incident, phase, since)

    def notification(self, sink: str, outcome: str) -> None:
        self.notifications.labels(sink=sink if sink in SINKS else "other",
                                  outcome=outcome if outcome in ("delivered", "failed") else "other").inc()

    def serve(self, port: int, addr: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - scraped at the pod's IP
        """`/metrics` (any path, as prometheus-client serves it) on `port` (0: any free one), in a
        daemon thread; returns the server (its `server_port`, `shutdown()`)."""
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return server
