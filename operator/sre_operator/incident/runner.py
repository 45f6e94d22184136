"""Carries an Incident's pipeline out: each tick reads what the stage needs through the ports (one
`Snapshot` of the namespace, one metrics reading, the namespace's Incidents, logs and traces for
triage, the model's plan), asks `pipeline.advance` for the step, and makes its writes in order,
persisting each status patch before the next write. The daemon loop (`run_incident`) ticks until
the Incident is finished, gone, or the operator stops.

Guarantees (they hold because every write goes through `execute` in the step's order):
- every step is persisted before the next begins: a killed operator resumes from the stored status;
- an action is recorded `pending` with its intent (one step) before it is applied and `applied`
  after (the next): resumed anywhere, an action whose intent already shows is not applied again;
- every write lands in the Incident's own namespace, one the operator acts in (`pipeline.advance`
  fails an Incident anywhere else before any stage runs)."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..detection.evidence import trace_sources
from ..detection.signals import service_signals
from ..domain import clock
from ..domain.metrics import Metrics
from ..domain.models import Evidence, MitigationPlan, TraceFacts
from ..domain.ports import Cluster, ClusterError, Obj, recent_logs
from ..domain.snapshot import Snapshot
from ..domain.topology import NAME_LABEL
from ..domain.vocabulary import TERMINAL, Phase
from ..planning.llm import LlmError
from ..settings import Settings
from . import pipeline
from .step import Event, Status, Step, Write, merged

log = logging.getLogger("sre_operator.pipeline")
KIND = "Incident"
MAX_AT_ONCE = 20  # ticks in a row without pausing (a stage that has more to do at once)


class Planner(Protocol):
    def plan(self, ev: Evidence, namespace: str, tried: set[str]) -> tuple[MitigationPlan, dict[str, Any]]: ...


class TraceSource(Protocol):
    def evidence(self, service: str, limit: int = 5) -> list[TraceFacts]: ...


class Stopped(Protocol):
    """kopf's `DaemonStopped`: false until the operator stops the daemon."""
    def __bool__(self) -> bool: ...

    def wait(self, timeout: float) -> object: ...


def _no_event(event: Event) -> None:
    pass


@dataclass
class Ports:
    cluster: Cluster
    metrics: Metrics
    emit: Callable[[Event], None] = _no_event
    llm: Planner | None = None
    traces: TraceSource | None = None
    clock: Callable[[], dt.datetime] = field(default=clock.now)


@dataclass(frozen=True)
class Ticked:
    phase: Phase | str
    again: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


def observe(ports: Ports, incident: Obj, settings: Settings) -> pipeline.Tick:
    """What this tick's stage may look at, read through the ports (only what the phase needs)."""
    now = ports.clock()
    ns = incident["metadata"]["namespace"]
    status = incident.get("status") or {}
    need = pipeline.needs(status, now, settings)
    snap = Snapshot.read(ports.cluster, ns, now) if need.snapshot else Snapshot(ns, now)
    window = pipeline.window_for(status, now)
    figures = ports.metrics.read([ns], window).of(ns) if need.metrics else None
    tick = pipeline.Tick(incident=incident, snapshot=snap, settings=settings, now=now,
                         signals=service_signals(snap, figures), complete=figures is not None, window=window,
                         incidents=ports.cluster.list_objects(KIND, ns) if need.incidents else [])
    if not need.evidence:
        return tick
    try:
        service = tick.spec.service
    except ValueError:
        return tick  # the stage says why it cannot be handled
    logs = recent_logs(ports.cluster, ns, f"{NAME_LABEL}={service}")
    traces = [x for name in trace_sources(service) for x in ports.traces.evidence(name)] if ports.traces else []
    tick = replace(tick, logs=logs, traces=traces)
    if need.model and ports.llm is not None:
        tick = replace(tick, model=ask_model(ports.llm, tick))
    return tick


def ask_model(llm: Planner, tick: pipeline.Tick) -> pipeline.ModelAnswer:
    try:
        proposal, usage = llm.plan(pipeline.evidence_of(tick), tick.namespace, pipeline.tried(tick))
    except LlmError as exc:
        return pipeline.ModelAnswer(None, exc.usage, str(exc))
    return pipeline.ModelAnswer(proposal, usage)


def apply(cluster: Cluster, namespace: str, write: Write) -> None:
    if write.verb == "delete":
        try:
            cluster.delete(write.kind, namespace, write.name)
        except ClusterError as exc:
            if exc.status != 404:  # already gone: its controller replaced it anyway
                raise
        return
    if write.verb == "create":
        cluster.create(write.kind, namespace, write.body)
        return
    cluster.patch(write.kind, namespace, write.name, write.patch_type, write.body)


def execute(ports: Ports, incident: Obj, step: Step, now: dt.datetime) -> dict[str, Any]:
    """Makes the step's writes in order; returns the status as persisted. A write the API server
    refuses for good (not a transient error, which propagates and is retried) ends the step: the
    step's `on_refused` is persisted instead."""
    meta = incident["metadata"]
    ns, name, generation = meta["namespace"], meta["name"], int(meta.get("generation") or 0)
    status = dict(incident.get("status") or {})
    for op in step.ops:
        if isinstance(op, Status):
            patch, events = pipeline.settle(op, status, generation, now)
            ports.cluster.patch_status(KIND, ns, name, patch)
            status = merged(status, patch)
            for event in events:
                emit(ports, event)
        elif isinstance(op, Write):
            try:
                apply(ports.cluster, ns, op)
            except ClusterError as exc:
                if exc.transient or step.on_refused is None:
                    raise
                return execute(ports, {**incident, "status": status}, step.on_refused(str(exc)), now)
        else:
            emit(ports, op)
    return status


def emit(ports: Ports, event: Event) -> None:
    try:
        ports.emit(event)
    except Exception as exc:  # noqa: BLE001 - an Event is a courtesy: it never stops the pipeline
        log.warning("event %s not emitted: %s", event.reason, exc)


def tick(ports: Ports, namespace: str, name: str, settings: Settings) -> Ticked | None:
    """One step of one Incident (None: it is gone)."""
    incident = ports.cluster.get(KIND, namespace, name)
    if incident is None:
        return None
    observed = observe(ports, incident, settings)
    step = pipeline.advance(observed)
    status = execute(ports, incident, step, observed.now)
    return Ticked(status.get("phase") or Phase.DETECTED, step.again)


def run_incident(ports: Ports, namespace: str, name: str, settings: Settings, stopped: Stopped,
                 pause: float = 1.0) -> None:
    """The daemon of one open Incident: ticks until it is finished or gone, or the operator stops.
    An API error (or any other) is retried with a growing back-off and said in status; the
    Incident's own faults end it Failed (in `pipeline.advance`), never here."""
    failures, at_once = 0, 0
    while not stopped:
        try:
            done = tick(ports, namespace, name, settings)
        except Exception as exc:  # noqa: BLE001 - an API hiccup: back off and retry, never crash
            failures += 1
            delay = min(60.0, 2.0 ** failures)
            log.warning("incident %s/%s: %s; retrying in %.0fs", namespace, name, exc, delay)
            try:
                ports.cluster.patch_status(KIND, namespace, name,
                                           {"message": f"retrying in {delay:.0f}s after an error: {str(exc)[:300]}"})
            except Exception as again:  # noqa: BLE001 - the API server may be the thing that is down
                log.debug("incident %s/%s: status not written either: %s", namespace, name, again)
            stopped.wait(delay)
            continue
        failures = 0
        if done is None or done.finished:
            return
        at_once = at_once + 1 if done.again else 0
        if done.again and at_once < MAX_AT_ONCE:
            continue
        at_once = 0
        stopped.wait(pause)
