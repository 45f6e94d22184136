"""Detection, pure: from the signals a real SRE sees (Prometheus SLO signals, pod and Deployment
states; never FaultScenarios) to breaches, and from breaches to the Incidents to open.

A breach must hold for `for_cycles` consecutive readings before it counts (no flapping on one bad
scrape), unless it is conclusive the moment it is read: an object seen healthy that no longer exists,
a workload scaled to 0, containers the kubelet already reports crash-looping or OOM-killed (it has
restarted them and backs off), a pod that can never start (its image, its config, no node). Waiting a
second reading for these only adds the detection interval to the time to detect. One open Incident
per service (dedup key `service/symptom`; the service's other symptoms are its evidence), and none
again for that service within the cooldown after it closed. Correlated breaches are folded into the
one about the root: the gateway's 5xx while a service it routes to is down is that service's incident."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from ..domain.models import Symptom
from ..domain.policy import Thresholds
from ..domain.topology import ROUTES_TO
from ..domain.vocabulary import SEVERITY_ORDER, Source, SymptomKind


@dataclass
class ServiceSignals:
    service: str
    error_ratio: float | None = None
    p95_seconds: float | None = None
    request_rate: float | None = None
    scrape_up: bool | None = None
    desired: int | None = None
    ready: int | None = None
    restarts: int | None = None
    crash_looping: bool = False
    oom_killed: bool = False
    rolling_out: bool = False  # a rollout in progress (a person's restart) is not an outage
    stuck_pod_seconds: float | None = None  # the oldest running pod that is not Ready, how long
    newest_pod_seconds: float | None = None  # the youngest pod's time serving (since Ready): figures not in yet
    endpoints_problem: str | None = None  # its Service reaches none of its (ready) pods, and why
    unrouted_ratio: float | None = None  # gateway: share of one API route's requests no location served
    unrouted_route: str | None = None
    route_error_ratio: float | None = None  # gateway: the 5xx ratio of its worst API route
    route_error_route: str | None = None
    route_rate: float | None = None  # that route's requests a second
    saturation: float | None = None  # share of its database connections busy over the window
    waiting: float | None = None  # queries waiting for a connection, on average
    cpu_throttled: float | None = None  # its worst settled pod's share of CPU periods cut short by its limit
    orders_rate: float | None = None  # orders placed a second (the business outcome)
    orders_failed_ratio: float | None = None  # share of them that failed, stock aside
    never_starting: str | None = None  # a pod that will not start however long one waits, and why
    missing: str | None = None  # its Deployment or Service was seen healthy and no longer exists


@dataclass(frozen=True)
class Breach:
    service: str
    symptom: str
    signal: str
    value: float
    threshold: float
    source: str
    conclusive: bool = False  # needs no second reading (see the module's docstring)

    @property
    def key(self) -> str:
        return f"{self.service}/{self.symptom}"

    def as_symptom(self) -> Symptom:
        return Symptom(kind=SymptomKind(self.symptom), service=self.service, signal=self.signal,
                       value=self.value, threshold=self.threshold, source=Source(self.source),
                       evidence=self.signal)


DEFAULT_THRESHOLDS = Thresholds()
# The symptoms only the metrics source shows (a Breach's source "prometheus").
METRIC_SYMPTOMS = frozenset({"scrape-down", "error-rate", "latency", "route-missing", "saturation", "cpu-throttled"})


def breaches(signals: list[ServiceSignals], t: Thresholds = DEFAULT_THRESHOLDS) -> list[Breach]:
    out: list[Breach] = []
    for s in signals:
        if s.missing:
            out.append(Breach(s.service, "unavailable" if s.desired is None else "endpoints-missing", s.missing,
                              0.0, 1.0, "kubernetes", conclusive=True))
            continue
        if s.crash_looping or s.oom_killed:
            out.append(Breach(s.service, "oom" if s.oom_killed else "crash-loop",
                              f"{s.service} containers {'OOM-killed' if s.oom_killed else 'crash-looping'}",
                              float(s.restarts or 0), float(t.restarts), "kubernetes", conclusive=True))
        elif s.desired == 0:
            out.append(Breach(s.service, "unavailable", f"{s.service} is scaled to 0 replicas", 0.0, 1.0,
                              "kubernetes", conclusive=True))
        elif s.desired and s.ready is not None and s.ready == 0 and not s.rolling_out:
            out.append(Breach(s.service, "unavailable", f"{s.service} has 0/{s.desired} ready replicas",
                              0.0, float(s.desired), "kubernetes"))
        elif s.never_starting:  # conclusive at once: waiting will not make it start
            out.append(Breach(s.service, "not-ready", f"{s.service} has a pod that cannot start: {s.never_starting}",
                              0.0, 1.0, "kubernetes", conclusive=True))
        elif s.stuck_pod_seconds is not None and s.stuck_pod_seconds > t.stuck_seconds:
            out.append(Breach(s.service, "not-ready", f"{s.service} has a pod not ready for "
                              f"{s.stuck_pod_seconds:.0f}s" + (" during a rollout" if s.rolling_out else ""),
                              s.stuck_pod_seconds, t.stuck_seconds, "kubernetes"))
        if s.endpoints_problem and not s.rolling_out:
            out.append(Breach(s.service, "endpoints-missing", s.endpoints_problem, 0.0, 1.0, "kubernetes"))
        if s.scrape_up is False and not s.rolling_out and (s.ready or 0) > 0:
            out.append(Breach(s.service, "scrape-down", f"{s.service} metrics endpoint down", 0.0, 1.0,
                              "prometheus"))
        busy = (s.request_rate or 0) >= t.min_request_rate
        failing = error_breach(s, t, busy)
        if failing is not None:
            out.append(failing)
        if busy and s.p95_seconds is not None and s.p95_seconds > t.p95_seconds:
            out.append(Breach(s.service, "latency", f"{s.service} P95 {s.p95_seconds * 1000:.0f} ms",
                              s.p95_seconds, t.p95_seconds, "prometheus"))
        if busy and s.unrouted_ratio is not None and s.unrouted_ratio > t.unrouted_ratio:
            out.append(Breach(s.service, "route-missing", f"{s.service} answers {s.unrouted_ratio:.0%} of "
                              f"{s.unrouted_route} itself with 404: no location serves the route",
                              s.unrouted_ratio, t.unrouted_ratio, "prometheus"))
        if busy and s.saturation is not None and s.saturation >= t.saturation and (s.waiting or 0) > 0.5:
            out.append(Breach(s.service, "saturation", f"{s.service} database connections {s.saturation:.0%} busy, "
                              f"{s.waiting:.1f} queries waiting on average", s.saturation, t.saturation, "prometheus"))
        if s.cpu_throttled is not None and s.cpu_throttled > t.cpu_throttled_ratio and not s.rolling_out:
            out.append(Breach(s.service, "cpu-throttled", f"{s.service} held back by its CPU limit in "
                              f"{s.cpu_throttled:.0%} of the periods it ran", s.cpu_throttled,
                              t.cpu_throttled_ratio, "prometheus"))
    # A dependency that is rolling out, or whose pods are too new for their figures to be in (the
    # rate window still mixes the old pods' requests), cannot be judged this reading: its
    # callers' errors and latency wait rather than blame the caller.
    unsure = {s.service for s in signals if s.rolling_out or (s.service != "gateway" and (
        (s.request_rate is None and (s.ready or 0) > 0)
        or (s.newest_pod_seconds is not None and s.newest_pod_seconds < t.fresh_pod_seconds)))}
    return correlate(out, unsure)


def error_breach(s: ServiceSignals, t: Thresholds, busy: bool) -> Breach | None:
    """A service's 5xx ratio over its threshold; or, for the gateway, one route's (the rest of the
    traffic diluting it); or orders failing without 5xx (the business outcome)."""
    if busy and s.error_ratio is not None and s.error_ratio > t.error_ratio:
        return Breach(s.service, "error-rate", f"{s.service} 5xx ratio {s.error_ratio:.1%}",
                      s.error_ratio, t.error_ratio, "prometheus")
    if (s.route_rate or 0) >= t.min_request_rate and s.route_error_ratio is not None \
            and s.route_error_ratio > t.error_ratio:
        return Breach(s.service, "error-rate", f"{s.service} 5xx ratio {s.route_error_ratio:.1%} on "
                      f"{s.route_error_route}", s.route_error_ratio, t.error_ratio, "prometheus")
    if (s.orders_rate or 0) >= t.min_request_rate and s.orders_failed_ratio is not None \
            and s.orders_failed_ratio > t.error_ratio:
        return Breach(s.service, "error-rate", f"{s.service}: {s.orders_failed_ratio:.0%} of orders failed "
                      f"(only {1 - s.orders_failed_ratio:.0%} confirmed)", s.orders_failed_ratio,
                      t.error_ratio, "prometheus")
    return None


def correlate(found: list[Breach], unsure: set[str] | None = None) -> list[Breach]:
    """Fold a caller's errors and latency into the breach of a dependency it routes to: an outage
    or a slowdown travels up the call chain, and the deepest troubled service is the root. While a
    dependency cannot be judged (`unsure`), its callers' errors and latency are held back."""
    troubled = {b.service for b in found} | (unsure or set())
    kept = []
    for b in found:
        deps = ROUTES_TO.get(b.service, ())
        if b.symptom in ("error-rate", "latency") and any(d in troubled and d != b.service for d in deps):
            continue
        kept.append(b)
    return kept


@dataclass
class Detector:
    """Remembers streaks, open incidents and cooldowns between readings."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    streaks: dict[str, int] = field(default_factory=dict)
    open_keys: set[str] = field(default_factory=set)
    closed_at: dict[str, float] = field(default_factory=dict)
    # When each current breach was first seen (wall clock): the symptom's onset, which an
    # Incident records as `spec.detectedAt` so its time to detect is measured from it.
    onsets: dict[str, dt.datetime] = field(default_factory=dict)
    # The last reading saw a change under way: a rollout, or a pod too new for its figures to be in.
    changing: bool = False

    def observe(self, signals: list[ServiceSignals], now: float | None = None,
                at: dt.datetime | None = None, complete: bool = True) -> list[Breach]:
        """New incidents to open for this reading (`at`: its wall-clock time, for the onsets).
        `complete`: the metrics source answered; when it did not, a breach only it can show is
        neither counted nor forgotten (missing data is not health): its streak and onset hold."""
        now = time.monotonic() if now is None else now
        t = self.thresholds
        self.changing = any(s.rolling_out or (s.newest_pod_seconds is not None
                                              and s.newest_pod_seconds < t.fresh_pod_seconds) for s in signals)
        # Services with an open incident, or one closed within the cooldown, explain their callers'
        # errors and latency (the rate window's error ratio still shows the outage after the fix).
        busy = {k.split("/", 1)[0] for k in self.open_keys}
        busy |= {k.split("/", 1)[0] for k, at in self.closed_at.items() if now - at < self.thresholds.cooldown_seconds}
        current = {b.key: b for b in breaches(signals, self.thresholds)
                   if not (b.symptom in ("error-rate", "latency")
                           and any(d in busy and d != b.service for d in ROUTES_TO.get(b.service, ())))}
        held = set() if complete else {k for k in self.streaks
                                       if k not in current and k.split("/", 1)[-1] in METRIC_SYMPTOMS}
        self.streaks = {**{k: self.streaks[k] for k in held}, **{k: self.streaks.get(k, 0) + 1 for k in current}}
        if at is not None:
            self.onsets = {**{k: self.onsets[k] for k in held if k in self.onsets},
                           **{k: self.onsets.get(k, at) for k in current}}
        # One incident per service: a second symptom of a service that already has an open
        # incident (a 502 storm is also slow) is evidence for that incident, not a new one; of
        # several new symptoms of one service, the most severe opens it.
        taken = {k.split("/", 1)[0] for k in self.open_keys}
        to_open = []
        for key, b in sorted(current.items(), key=lambda kv: SEVERITY_ORDER.index(kv[1].symptom)):
            if self.streaks[key] < (1 if b.conclusive else self.thresholds.for_cycles) or b.service in taken:
                continue
            if self.cooling_down(b.service, now):
                continue
            to_open.append(b)
            taken.add(b.service)
        return to_open

    def awaiting_confirmation(self, now: float | None = None) -> bool:
        """A breach was seen that needs another reading before it opens an Incident (and could open
        one then: no Incident open for its service, none closed within the cooldown)."""
        now = time.monotonic() if now is None else now
        taken = {k.split("/", 1)[0] for k in self.open_keys}
        for key, streak in self.streaks.items():
            service = key.split("/", 1)[0]
            if streak >= self.thresholds.for_cycles or service in taken:
                continue
            if not self.cooling_down(service, now):
                return True
        return False

    def watchful(self, now: float | None = None) -> bool:
        """Worth reading again soon: a breach awaits its confirming reading, or a change is under way
        (most faults arrive as one; an SRE watches a rollout closely, not every five seconds)."""
        return self.changing or self.awaiting_confirmation(now)

    def cooling_down(self, service: str, now: float) -> bool:
        """An Incident about the service closed within the cooldown: none opens again yet."""
        last_closed = max((at for k, at in self.closed_at.items() if k.split("/", 1)[0] == service), default=-1e18)
        return now - last_closed < self.thresholds.cooldown_seconds

    def opened(self, key: str) -> None:
        self.open_keys.add(key)

    def closed(self, key: str, now: float | None = None) -> None:
        self.open_keys.discard(key)
        self.closed_at[key] = time.monotonic() if now is None else now

    def sync_open(self, keys: set[str]) -> None:
        """The open incidents as the API says (after a restart, or closed by someone else)."""
        for k in self.open_keys - keys:
            self.closed(k)
        self.open_keys = set(keys)
