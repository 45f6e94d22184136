"""Carries an Incident's pipeline out: each tick reads what the stage needs through the ports (one
`Snapshot` of the namespace, one metrics reading, the namespace's Incidents, logs and traces for
triage, the model's plan), asks `pipeline.advance` for the step, and makes its writes in order,
persisting each status patch before the next write. The daemon loop ticks until the Incident is
finished, gone, or the operator stops: `run_incident` on a thread of its own, `run_incident_async`
as an asyncio task whose ticks share a bounded pool of threads (the operator's: many Incidents
open at once), both paced by `Pace`.

Guarantees (they hold because every write goes through `execute` in the step's order):
- every step is persisted before the next begins: a killed operator resumes from the stored status;
- an action is recorded `pending` with its intent (one step) before it is applied and `applied`
  after (the next): resumed anywhere, an action whose intent already shows is not applied again;
- every write lands in the Incident's own namespace, one the operator acts in (`pipeline.advance`
  fails an Incident anywhere else before any stage runs).

The operator's own figures (`Ports.telemetry`) are derived from what the runner does anyway, never
by reading the cluster again: a persisted status patch that moves the phase is a transition (the
first, Detected → Triaging, an Incident taken on, with its time to detect; Resolved, its time to
mitigate), an action record that reaches applied, failed or undone is an action, a new undo-log
entry an undo; the model's answer in the tick is an LLM call (one asked in the background, once its
answer is persisted).

Questions asked in the background (`step.Question`: hybrid triage's diagnosis when a rule acts at
once) run on a few threads of the process (`Background`), take the same model slot as any other,
and are handed to the pipeline in the tick after they are answered (`Tick.late`). The daemon loop
of an Incident that finished before the answer came waits for it, as long as one question may take
(`pipeline.late_wait_seconds`), then ends; after a restart nobody holds the question, and the
pipeline says it was not received."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..detection.evidence import trace_sources
from ..detection.signals import service_signals
from ..domain import clock
from ..domain.clock import parse
from ..domain.metrics import Metrics
from ..domain.models import Diagnosis, Evidence, MitigationPlan, TraceFacts
from ..domain.notify import Notifier
from ..domain.ports import Cluster, ClusterError, Obj, recent_logs
from ..domain.snapshot import Snapshot
from ..domain.telemetry import NO_TELEMETRY, Telemetry
from ..domain.topology import NAME_LABEL
from ..domain.tracing import NO_SPANS, Ref, Spans
from ..domain.vocabulary import TERMINAL, ModelStage, Outcome, Phase, PlannerPolicy
from ..planning import selection
from ..planning.llm import LlmError
from ..settings import Settings
from . import notices, pipeline
from .model_slot import ModelSlot
from .step import Event, Question, Status, Step, Write, merged

log = logging.getLogger("sre_operator.pipeline")
KIND = "Incident"
MAX_AT_ONCE = 20  # ticks in a row without pausing (a stage that has more to do at once)


class Planner(Protocol):
    """The model as triage and planning agent (`planning.llm.LlmPlanner`): an answer with its usage,
    or LlmError with the reason and the usage."""
    def plan(self, ev: Evidence, namespace: str, tried: set[str]) -> tuple[MitigationPlan, dict[str, Any]]: ...

    def diagnose(self, ev: Evidence, namespace: str) -> tuple[Diagnosis, dict[str, Any]]: ...


class TraceSource(Protocol):
    def evidence(self, service: str, limit: int = 5) -> list[TraceFacts]: ...


class Stopped(Protocol):
    """kopf's `DaemonStopped`: false until the operator stops the daemon."""
    def __bool__(self) -> bool: ...

    def wait(self, timeout: float) -> object: ...


def _no_event(event: Event) -> None:
    pass


# One model slot per operator process (`model_slot`): Incidents asking at once take turns, and say they wait.
MODEL_SLOT = ModelSlot()
WAITING_FOR_THE_MODEL = "waiting for the model: it is answering another question"
BACKGROUND_WORKERS = 2  # threads for questions asked in the background (the model slot lets one ask at a time)


def slot_wait(settings: Settings) -> float:
    """The longest a question waits for the model slot: a whole question (every try timing out), twice."""
    return settings.llm_timeout_seconds * (settings.llm_max_retries + 1) * 2


@dataclass
class _Held:
    future: Future[pipeline.ModelAnswer]
    abandoned: threading.Event
    gave_up_after: float = 0.0


class Background:
    """The questions this process asks the model in the background, one per Incident, on a few
    threads of its own (made on first use). Only this process knows them: after a restart an
    Incident's question is held by nobody, and its pipeline records that it was not received."""

    def __init__(self, workers: int = BACKGROUND_WORKERS) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def ask(self, key: str, job: Callable[[threading.Event], pipeline.ModelAnswer]) -> bool:
        """Starts `job` (given an Event set when nobody awaits its answer any more) unless the
        Incident's question is held already."""
        with self._lock:
            if key in self._held:
                return False
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="model")
            abandoned = threading.Event()
            self._held[key] = _Held(self._pool.submit(job, abandoned), abandoned)
            return True

    def state(self, key: str) -> tuple[pipeline.ModelAnswer | None, bool, float]:
        """(its answer once it came, whether it is still being asked, how long the daemon loop
        waited for it in vain); (None, False, 0) when this process holds no question for `key`."""
        with self._lock:
            held = self._held.get(key)
        if held is None:
            return None, False, 0.0
        if held.gave_up_after:
            return None, False, held.gave_up_after
        if not held.future.done():
            return None, True, 0.0
        try:
            return held.future.result(), False, 0.0
        except (concurrent.futures.CancelledError, Exception):  # noqa: BLE001 - never asked: not received
            return None, False, 0.0

    def pending(self, key: str) -> Future[pipeline.ModelAnswer] | None:
        """The question still being asked for `key` (None: none, answered, or given up)."""
        with self._lock:
            held = self._held.get(key)
        return held.future if held is not None and not held.gave_up_after and not held.future.done() else None

    def give_up(self, key: str, waited: float) -> None:
        """Nobody waits for this answer any more (the daemon loop waited `waited` seconds)."""
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                held.gave_up_after = max(waited, 0.001)
                held.abandoned.set()

    def drop(self, key: str) -> None:
        with self._lock:
            held = self._held.pop(key, None)
        if held is not None:
            held.abandoned.set()

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            for held in self._held.values():
                held.abandoned.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def question_key(incident: Obj) -> str:
    meta = incident.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid') or ''}"


@dataclass
class Ports:
    cluster: Cluster
    metrics: Metrics
    emit: Callable[[Event], None] = _no_event
    llm: Planner | None = None
    traces: TraceSource | None = None
    clock: Callable[[], dt.datetime] = field(default=clock.now)
    telemetry: Telemetry = NO_TELEMETRY
    model_slot: ModelSlot = field(default=MODEL_SLOT)
    notifier: Notifier | None = None  # None: no sink configured, nothing told
    spans: Spans = NO_SPANS
    background: Background = field(default_factory=Background)  # the operator passes its process's one


@dataclass(frozen=True)
class Ticked:
    phase: Phase | str
    again: bool = False
    waiting: bool = False  # the model's diagnosis asked in the background is still to be recorded
    key: str = field(default="", compare=False)  # `question_key` of the Incident

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL and not self.waiting


def observe(ports: Ports, incident: Obj, settings: Settings) -> pipeline.Tick:
    """What this tick's stage may look at, read through the ports (only what the phase needs)."""
    now = ports.clock()
    ns = incident["metadata"]["namespace"]
    status = incident.get("status") or {}
    bare = pipeline.Tick(incident=incident, snapshot=Snapshot(ns, now), settings=settings, now=now,
                         model_configured=ports.llm is not None)
    if pipeline.diagnosis_pending(status):
        late, asking, gave_up_after = ports.background.state(question_key(incident))
        bare = replace(bare, late=late, asking=asking, gave_up_after=gave_up_after)
        if pipeline.late(bare) is not None:
            return bare  # this tick records the late diagnosis, and only that
    need = pipeline.needs(status, now, settings)
    if need.model and ports.llm is not None and may_ask(bare):  # still in line for the model: nothing to read yet
        waited = ports.model_slot.still_waiting(question_key(incident), now.timestamp())
        if waited is not None and waited <= slot_wait(settings):
            raise InLine(bare.phase)
    snap = Snapshot.read(ports.cluster, ns, now) if need.snapshot else bare.snapshot
    window = pipeline.window_for(status, now)
    figures = ports.metrics.read([ns], window).of(ns) if need.metrics else None
    tick = replace(bare, snapshot=snap, signals=service_signals(snap, figures), complete=figures is not None,
                   window=window, incidents=ports.cluster.list_objects(KIND, ns) if need.incidents else [])
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
        try:
            wanted = pipeline.model_use(tick)
        except (ValueError, KeyError, TypeError):
            return tick  # the Incident cannot be read: the stage says why (never a tick that raises forever)
        if wanted.ask and not wanted.background:  # a background question is the step's (`Question`)
            answer = in_turn(ports, ports.llm, tick, settings)
            if answer is None:
                raise InLine(tick.phase)
            report_model_span(ports.spans, incident, settings.llm_model, ports.clock(), answer)
            tick = replace(tick, model=answer)
    return tick


def may_ask(tick: pipeline.Tick) -> bool:
    """Whether the Incident's policy lets it ask the model at all (the operator's, or a stricter one
    its spec asks for now): one told to use the rules since it got in line does not keep waiting."""
    try:
        return selection.effective_policy(tick.settings.planner, tick.spec.planner) != PlannerPolicy.RULES
    except (ValueError, KeyError, TypeError):
        return False  # the stage says why the Incident cannot be read


class InLine(Exception):
    """The tick's question waits for the model slot: the stage is not run this tick."""
    def __init__(self, phase: Phase) -> None:
        super().__init__(WAITING_FOR_THE_MODEL)
        self.phase = phase


def in_turn(ports: Ports, llm: Planner, tick: pipeline.Tick, settings: Settings) -> pipeline.ModelAnswer | None:
    """Asks the model when it is this Incident's turn for the slot; None while it waits in line
    (status says so, and the tick ends: no thread is held while waiting). Waiting longer than a
    whole question may take (every try timing out, twice over) is an answer without a plan: the
    rules decide, the Incident moves on."""
    slot, key = ports.model_slot, question_key(tick.incident)
    waited = slot.turn(key, tick.now.timestamp())
    if waited is not None:
        longest = slot_wait(settings)
        if waited <= longest:
            if tick.status.get("message") != WAITING_FOR_THE_MODEL:
                ports.cluster.patch_status(KIND, tick.namespace, tick.name, {"message": WAITING_FOR_THE_MODEL})
            return None
        slot.leave(key)
        stage = ModelStage.TRIAGE if tick.phase == Phase.TRIAGING else ModelStage.PLANNING
        return pipeline.ModelAnswer(None, {}, f"the model stayed busy for {longest:.0f}s with another incident",
                                    stage=stage)
    try:
        return ask_model(llm, tick, ports.clock)
    finally:
        slot.release()


def ask_model(llm: Planner, tick: pipeline.Tick, now: Callable[[], dt.datetime] = clock.now) -> pipeline.ModelAnswer:
    """One question to the model for this tick's stage, timed by the ports' clock. Whatever goes wrong (an LlmError, or
    anything else the client or the answer raises) is an answer without a plan, with the reason:
    the stage falls back to the rules and the Incident moves on."""
    stage = ModelStage.TRIAGE if tick.phase == Phase.TRIAGING else ModelStage.PLANNING

    def call() -> pipeline.ModelAnswer:
        ev = pipeline.evidence_of(tick)
        if stage == ModelStage.TRIAGE:
            found, usage = llm.diagnose(ev, tick.namespace)
            return pipeline.ModelAnswer(None, usage, stage=stage, diagnosis=found)
        proposal, usage = llm.plan(ev, tick.namespace, pipeline.tried(tick))
        return pipeline.ModelAnswer(proposal, usage, stage=stage)
    return timed(call, stage, tick.name, now)


def timed(call: Callable[[], pipeline.ModelAnswer], stage: ModelStage, name: str,
          now: Callable[[], dt.datetime]) -> pipeline.ModelAnswer:
    """One question (`call`), timed; whatever it raises is an answer without a plan or diagnosis."""
    start = now()
    try:
        answer = call()
    except LlmError as exc:
        answer = pipeline.ModelAnswer(None, exc.usage, str(exc), stage=stage)
    except Exception as exc:  # noqa: BLE001 - a model is outside input: its failure is never a stuck Incident
        log.warning("model call for %s failed: %s: %s", name, type(exc).__name__, exc)
        answer = pipeline.ModelAnswer(None, {"calls": 1}, f"the model call failed: {type(exc).__name__}: "
                                                          f"{str(exc)[:300]}", stage=stage)
    seconds = round(max(0.0, (now() - start).total_seconds()), 2)
    return replace(answer, usage={**answer.usage, "callSeconds": [seconds]})


def ask_later(ports: Ports, incident: Obj, settings: Settings, question: Question) -> None:
    """Hands `question` to the process's background questions (unless the Incident's is held
    already): it waits for the model slot as any question does, and its answer (with its span
    reported when it comes) carries the evidence it was asked from."""
    llm = ports.llm
    if llm is None:
        return  # nothing to ask: the pipeline says the diagnosis was not received
    meta = incident.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    ev, stage = question.evidence, question.stage

    def job(abandoned: threading.Event) -> pipeline.ModelAnswer:
        slot, longest = ports.model_slot, slot_wait(settings)
        if not slot.acquire(f"{question_key(incident)}/background", longest, lambda: ports.clock().timestamp()):
            answer = pipeline.ModelAnswer(None, {"calls": 0}, f"the model stayed busy for {longest:.0f}s with other "
                                          "questions", stage=stage)
        else:
            try:
                if abandoned.is_set():  # nobody waits for it any more: the model is not asked
                    return pipeline.ModelAnswer(None, {}, "no longer awaited", stage=stage, evidence=ev)

                def call() -> pipeline.ModelAnswer:
                    found, usage = llm.diagnose(ev, namespace)
                    return pipeline.ModelAnswer(None, usage, stage=stage, diagnosis=found)
                answer = timed(call, stage, name, ports.clock)
            finally:
                slot.release()
        report_model_span(ports.spans, incident, settings.llm_model, ports.clock(), answer)
        return replace(answer, evidence=ev)

    if ports.background.ask(question_key(incident), job):
        log.info("incident %s/%s: the model's %s is asked in the background", namespace, name,
                 "diagnosis" if stage == ModelStage.TRIAGE else "plan")


def ref_of(incident: Obj) -> Ref:
    meta = incident.get("metadata") or {}
    return Ref(str(meta.get("uid") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def report_model_span(spans: Spans, incident: Obj, model: str, end: dt.datetime,
                      answer: pipeline.ModelAnswer) -> None:
    """The model call (its own `callSeconds`, ending now) as a span with the GenAI semantic
    conventions' attributes, and the stage it was asked for."""
    try:
        usage = answer.usage
        seconds = sum(float(x) for x in usage.get("callSeconds") or [])
        attrs: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": int(usage.get("promptTokens", 0)),
            "gen_ai.usage.output_tokens": int(usage.get("completionTokens", 0)), "sre.model.stage": str(answer.stage)}
        if usage.get("model"):
            attrs["gen_ai.response.model"] = str(usage["model"])[:100]
        if answer.error:
            attrs["error.type"] = answer.error[:200]
        spans.model_call(ref_of(incident), model, end.timestamp() - seconds, end.timestamp(), attrs)
    except Exception as exc:  # noqa: BLE001 - a span is a courtesy: it never stops the pipeline
        log.warning("span not recorded: %s", exc)


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
    step's `on_refused` is persisted instead. (A `Question` was handed over by `tick`.)"""
    meta = incident["metadata"]
    ns, name, generation = meta["namespace"], meta["name"], int(meta.get("generation") or 0)
    status = dict(incident.get("status") or {})
    for op in step.ops:
        if isinstance(op, Status):
            patch, events = pipeline.settle(op, status, generation, now)
            ports.cluster.patch_status(KIND, ns, name, patch)
            before, status = status, merged(status, patch)
            if "phase" in patch:
                decided(meta, f"{before.get('phase') or Phase.DETECTED} → {patch['phase']}: {patch.get('message', '')}",
                        phase=patch["phase"])
            report(ports.telemetry, incident.get("spec") or {}, before, patch, status)
            report_spans(ports.spans, incident, before, status)
            for event in events:
                emit(ports, event)
        elif isinstance(op, Write):
            try:
                apply(ports.cluster, ns, op)
            except ClusterError as exc:
                if exc.transient or step.on_refused is None:
                    raise
                decided(meta, f"{op.verb} {op.kind}/{op.name} refused: {exc}", write=f"{op.kind}/{op.name}")
                return execute(ports, {**incident, "status": status}, step.on_refused(str(exc)), now)
            decided(meta, f"{op.verb} {op.kind}/{op.name}", write=f"{op.kind}/{op.name}")
        elif isinstance(op, Event):
            emit(ports, op)
    return status


def decided(meta: dict[str, Any], text: str, **fields: str) -> None:
    """One log line per decision (a phase moved, a write made), naming the Incident: in the text,
    and as fields of a JSON line (`--log-format json`), with kopf's own `object` reference."""
    ns, name = meta.get("namespace"), meta.get("name")
    ref = {"apiVersion": "sre.stratus.dev/v1alpha1", "kind": KIND, "name": name, "namespace": ns,
           "uid": meta.get("uid")}
    log.info("incident %s/%s: %s", ns, name, text[:1000],
             extra={"incident": name, "namespace": ns, "k8s_ref": ref, **fields})


COUNTED = frozenset({Outcome.APPLIED, Outcome.FAILED, Outcome.UNDONE})


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = parse(start), parse(end)
    return None if a is None or b is None else max(0.0, (b - a).total_seconds())


def report(telemetry: Telemetry, spec: dict[str, Any], before: dict[str, Any], patch: dict[str, Any],
           after: dict[str, Any]) -> None:
    """What one persisted status patch tells about the operator's work (see the module's doc).
    Times come from the Incident's own fields: the onset (`spec.detectedAt`), its creation
    (`status.detectedAt`) and `status.resolvedAt`."""
    try:
        phase = patch.get("phase")
        if phase and phase != before.get("phase"):
            onset = spec.get("detectedAt") or after.get("detectedAt")
            if phase == Phase.TRIAGING and "timeToDetect" in patch:
                telemetry.incident_opened(str(spec.get("symptom") or ""), _seconds(onset, after.get("detectedAt")))
            ttm = _seconds(onset, after.get("resolvedAt")) if phase == Phase.RESOLVED else None
            telemetry.phase_changed(str(phase), ttm)
        if isinstance(patch.get("actions"), list):
            was = {(r.get("attempt"), r.get("index")): r.get("outcome") for r in before.get("actions") or []}
            for rec in patch["actions"]:
                outcome = rec.get("outcome")
                if outcome in COUNTED and was.get((rec.get("attempt"), rec.get("index"))) != outcome:
                    telemetry.action(str(rec.get("type") or ""), str(outcome))
        if isinstance(patch.get("undoLog"), list):
            for entry in patch["undoLog"][len(before.get("undoLog") or []):]:
                telemetry.undo(str(entry.get("outcome") or ""))
    except Exception as exc:  # noqa: BLE001 - a figure is a courtesy: it never stops the pipeline
        log.warning("telemetry not recorded: %s", exc)


def entered(status: dict[str, Any], phase: str) -> dt.datetime | None:
    """When the Incident entered `phase` (its last timeline entry; Detected: its creation)."""
    timeline = status.get("timeline") or []
    last = timeline[-1] if timeline and isinstance(timeline[-1], dict) else {}
    if last.get("phase") == phase:
        return parse(last.get("at"))
    return parse(status.get("detectedAt")) if phase in (Phase.DETECTED, Phase.TRIAGING) else None


def report_spans(spans: Spans, incident: Obj, before: dict[str, Any], after: dict[str, Any]) -> None:
    """A persisted move out of a phase is that phase's span; a move into a final phase is the
    Incident's own span too (from its creation)."""
    try:
        left, now = str(before.get("phase") or Phase.DETECTED), str(after.get("phase") or Phase.DETECTED)
        if left == now:
            return
        spec, ref = incident.get("spec") or {}, ref_of(incident)
        created = parse(after.get("detectedAt")) or parse(incident.get("metadata", {}).get("creationTimestamp"))
        end = entered(after, now)
        start = created if left == Phase.DETECTED else entered(before, left)
        if end is None or start is None:
            return
        common = {"sre.incident.service": str(spec.get("service") or "")[:63],
                  "sre.incident.symptom": str(spec.get("symptom") or "")[:64]}
        attempts = int(after.get("attempts") or 0)
        spans.phase(ref, left, start.timestamp(), end.timestamp(),
                    {**common, "sre.incident.next_phase": now, "sre.incident.attempt": attempts + 1})
        if now in TERMINAL and created is not None:
            spans.incident(ref, created.timestamp(), end.timestamp(),
                           {**common, "sre.incident.phase": now, "sre.incident.attempts": attempts})
    except Exception as exc:  # noqa: BLE001 - a span is a courtesy: it never stops the pipeline
        log.warning("span not recorded: %s", exc)


def report_model(telemetry: Telemetry, answer: pipeline.ModelAnswer | None, step: Step) -> None:
    """The model was asked this tick: its call(s) and tokens, and whether the step fell back to
    the rules (a `PlannerFallback` Event in the step)."""
    if answer is None:
        return
    try:
        usage = answer.usage
        fallback = any(isinstance(op, Event) and op.reason == "PlannerFallback" for op in step.ops)
        telemetry.llm_call(str(usage.get("model") or ""), int(usage.get("calls", 1)),
                           int(usage.get("promptTokens", 0)), int(usage.get("completionTokens", 0)), fallback)
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("telemetry not recorded: %s", exc)


def report_phase(telemetry: Telemetry, key: str, status: dict[str, Any] | None) -> None:
    """The Incident's phase and since when (its last timeline entry), for the open-Incident gauges;
    a finished or gone one is no longer counted."""
    try:
        phase = None if status is None else str(status.get("phase") or Phase.DETECTED)
        if status is None or phase is None or phase in TERMINAL:
            telemetry.in_phase(key, None)
            return
        last = (status.get("timeline") or [{}])[-1]
        since = parse(last.get("at")) if last.get("phase") == phase else parse(status.get("detectedAt"))
        telemetry.in_phase(key, phase, since.timestamp() if since is not None else None)
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("telemetry not recorded: %s", exc)


def emit(ports: Ports, event: Event) -> None:
    try:
        ports.emit(event)
    except Exception as exc:  # noqa: BLE001 - an Event is a courtesy: it never stops the pipeline
        log.warning("event %s not emitted: %s", event.reason, exc)


def tell(ports: Ports, incident: Obj, settings: Settings) -> None:
    """Hands the notice the Incident is due (if any) to the notifier; its outcome is recorded in
    `status.notified` when the sinks are done, from the notifier's thread. Until then every tick
    offers it again (the notifier ignores a key in flight), and so does the next operator after a
    restart: the notice is told once per transition."""
    if ports.notifier is None:
        return
    try:
        notice = notices.due(incident, settings.dashboard_url)
        key = notices.key_of(incident.get("status") or {})
        if notice is None or key is None:
            return
        ns, name = notice.namespace, notice.name

        def done(outcome: str) -> None:
            ports.cluster.patch_status(KIND, ns, name, notices.record(key, outcome, ports.clock()))
            log.info("incident %s/%s: %s notice %s", ns, name, notice.phase, outcome)
        ports.notifier.notify(notice, done)
    except Exception as exc:  # noqa: BLE001 - telling is a courtesy: it never stops the pipeline
        log.warning("incident %s: notice not handed over: %s", incident.get("metadata", {}).get("name"), exc)


def tick(ports: Ports, namespace: str, name: str, settings: Settings) -> Ticked | None:
    """One step of one Incident (None: it is gone)."""
    incident = ports.cluster.get(KIND, namespace, name)
    if incident is None:
        report_phase(ports.telemetry, f"{namespace}/{name}", None)
        return None
    try:
        observed = observe(ports, incident, settings)
    except InLine as inline:  # its turn for the model comes later: the next tick asks again
        return Ticked(inline.phase, key=question_key(incident))
    ports.model_slot.leave(question_key(incident))  # asked and answered, or no longer asking: out of the line
    step = pipeline.advance(observed)
    report_model(ports.telemetry, observed.model, step)
    asked = [op for op in step.ops if isinstance(op, Question)]
    for question in asked:  # before the status that says it is asked is persisted
        ask_later(ports, incident, settings, question)
    status = execute(ports, incident, step, observed.now)
    waiting = pipeline.diagnosis_pending(status)
    if observed.late is not None and not waiting:
        report_model(ports.telemetry, observed.late, step)  # counted once its answer is persisted
    if not waiting and not asked:
        ports.background.drop(question_key(incident))
    tell(ports, {**incident, "status": status}, settings)
    report_phase(ports.telemetry, f"{namespace}/{name}", status)
    return Ticked(status.get("phase") or Phase.DETECTED, step.again, waiting, question_key(incident))


@dataclass
class Pace:
    """The daemon loop's rhythm, for the thread and the asyncio loops alike: after each tick,
    how long to pause (0: tick again at once) or None when the Incident is finished or gone. An
    API error (or any other) is retried with a growing back-off and said in status; the
    Incident's own faults end it Failed (in `pipeline.advance`), never here."""
    ports: Ports
    namespace: str
    name: str
    settings: Settings
    pause: float = 1.0
    failures: int = 0
    at_once: int = 0
    awaited: Future[pipeline.ModelAnswer] | None = None  # set: wait for it (`wait_late`), then tick
    key: str = ""  # the Incident's background questions (`question_key`), as last ticked

    def step(self) -> float | None:
        """One tick, then the pause before the next (None: stop)."""
        ns, name = self.namespace, self.name
        try:
            done = tick(self.ports, ns, name, self.settings)
        except Exception as exc:  # noqa: BLE001 - an API hiccup: back off and retry, never crash
            self.failures += 1
            delay = min(60.0, 2.0 ** self.failures)
            log.warning("incident %s/%s: %s; retrying in %.0fs", ns, name, exc, delay)
            try:
                self.ports.cluster.patch_status(KIND, ns, name, {
                    "message": f"retrying in {delay:.0f}s after an error: {str(exc)[:300]}"})
            except Exception as again:  # noqa: BLE001 - the API server may be the thing that is down
                log.debug("incident %s/%s: status not written either: %s", ns, name, again)
            return delay
        self.failures = 0
        if done is None:
            if self.key:
                self.ports.background.drop(self.key)  # gone: nobody waits for its answer
                self.ports.model_slot.leave(self.key)  # nor asks the model any more
            return None
        self.key = done.key
        if done.finished:
            return None
        if done.phase in TERMINAL:  # finished before the model's diagnosis came: wait for it, then record it
            self.awaited = self.ports.background.pending(self.key)
            return 0.0
        self.at_once = self.at_once + 1 if done.again else 0
        if done.again and self.at_once < MAX_AT_ONCE:
            return 0.0
        self.at_once = 0
        return self.pause

    def take_awaited(self) -> Future[pipeline.ModelAnswer] | None:
        """The question the finished Incident still waits for (then the loop waits for it)."""
        awaited, self.awaited = self.awaited, None
        return awaited

    def give_up(self, waited: float) -> None:
        """The loop waited long enough: the next tick records that the answer did not come."""
        log.info("incident %s/%s: the model's diagnosis did not come within %.0fs of the end", self.namespace,
                 self.name, waited)
        self.ports.background.give_up(self.key, waited)


def run_incident(ports: Ports, namespace: str, name: str, settings: Settings, stopped: Stopped,
                 pause: float = 1.0) -> None:
    """The daemon of one open Incident, on a thread of its own: ticks until it is finished or
    gone, or the operator stops (`Pace` says when)."""
    pace = Pace(ports, namespace, name, settings, pause)
    while not stopped:
        delay = pace.step()
        if delay is None:
            return
        awaited = pace.take_awaited()
        if awaited is not None:
            bound = pipeline.late_wait_seconds(settings)
            deadline = time.monotonic() + bound
            while not stopped and not awaited.done() and (left := deadline - time.monotonic()) > 0:
                concurrent.futures.wait([awaited], timeout=min(1.0, left))
            if not awaited.done() and not stopped:
                pace.give_up(bound)
        elif delay:
            stopped.wait(delay)


class AsyncStopped(Protocol):
    """kopf's `DaemonStopped` as an async daemon has it: `await stopped.wait(timeout)`."""
    def __bool__(self) -> bool: ...

    def wait(self, timeout: float) -> Awaitable[object]: ...


async def run_incident_async(ports: Ports, namespace: str, name: str, settings: Settings, stopped: AsyncStopped,
                             workers: Executor, pause: float = 1.0) -> None:
    """The daemon of one open Incident as an asyncio task: each tick runs on one of the `workers`
    threads (with the caller's context variables: kopf's event posting), and the pauses between
    ticks hold no thread. However many Incidents are open, `workers` bound the threads, and every
    one of them moves on (a pausing Incident frees its worker for the next)."""
    pace = Pace(ports, namespace, name, settings, pause)
    loop = asyncio.get_running_loop()
    while not stopped:
        delay = await loop.run_in_executor(workers, contextvars.copy_context().run, pace.step)
        if delay is None:
            return
        awaited = pace.take_awaited()
        if awaited is not None:  # no thread held while the finished Incident waits for its diagnosis
            bound = pipeline.late_wait_seconds(settings)
            deadline, answered = loop.time() + bound, asyncio.wrap_future(awaited)
            while not stopped and not awaited.done() and (left := deadline - loop.time()) > 0:
                await asyncio.wait({answered}, timeout=min(1.0, left))
            if not awaited.done() and not stopped:
                pace.give_up(bound)
        elif delay:
            await stopped.wait(delay)
