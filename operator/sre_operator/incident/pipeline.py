"""One Incident's pipeline as a level-based state machine on `status.phase`: each tick, one stage —
a pure function of what the tick observed (`Tick`: the Incident, one `Snapshot` of its namespace,
the signals, the settings, the time) — returns a `Step`: the status patches and the writes to make,
in order. `runner.py` reads the inputs and carries the steps out through the ports.

Detected → Triaging → Planning → [AwaitingApproval] → Mitigating → Validating → Resolved
                                     ↘ DryRun            Validating → Undoing → Planning (next attempt)
                                                                              ↘ Escalated (maxAttempts)
Any phase → Failed when the Incident cannot be handled as it is (condition Valid=False says why).

The model's diagnosis asked in the background at triage (hybrid, a rule matching: `selection.Ask.
background`) is recorded by whichever tick its answer comes to, in any phase, finished ones too
(`late`): `status.diagnosis.pendingSince` says it is awaited meanwhile.

Mitigating applies one action per tick: recorded `pending` with its intent (one persisted step),
then applied and recorded `applied` (the next). A `pending` record whose intent already shows on its
target is marked applied, never applied again; undoing restores one record per tick the same way.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from pydantic import ValidationError

from .. import actions as acts
from ..detection import pod_states
from ..detection.detector import ServiceSignals, breaches
from ..detection.evidence import corroborated, evidence, symptoms_of
from ..detection.signals import health_of
from ..domain.clock import parse, seconds_text, stamp
from ..domain.metrics import WINDOW
from ..domain.models import (
    Action,
    Diagnosis,
    Evidence,
    Health,
    IncidentSpec,
    MitigationPlan,
    Symptom,
    TraceFacts,
)
from ..domain.ports import Obj
from ..domain.seal import seal, verify
from ..domain.snapshot import ACTION_LEDGER, Snapshot
from ..domain.topology import MANAGED_BY, NAME_LABEL, path_from
from ..domain.vocabulary import (
    DONE_OUTCOMES,
    TERMINAL,
    WARNING_PHASES,
    ActionType,
    Mode,
    ModelStage,
    Outcome,
    Phase,
)
from ..planning import diagnosis as diagnoses
from ..planning import rules as planner
from ..planning import selection
from ..planning import vetting as plancheck
from ..planning.llm import add_usage, tokens_spent, with_fallback
from ..settings import Settings
from . import limits
from .conditions import conditions
from .step import NOTHING, Event, Op, Question, Status, Step, Write
from .validation import judge, next_step

STRUCTURAL = frozenset({"unavailable", "crash-loop", "not-ready", "endpoints-missing", "oom"})
EARLY_SECONDS = 10.0  # the shortest window an early verdict may rest on
APPROVE_ANNOTATION = "sre.stratus.dev/approve"  # value: attempt-N (the attempt approved)
REJECT_ANNOTATION = "sre.stratus.dev/reject"  # value: attempt-N
APPROVED_BY_ANNOTATION = "sre.stratus.dev/approved-by"
TIMELINE = 50  # entries kept


@dataclass(frozen=True)
class ModelAnswer:
    """What the model answered this tick (asked by the runner): for triage a diagnosis, for planning
    a plan, or why there is none; with what it cost (`usage`, `callSeconds` included). A question
    asked in the background carries the `evidence` it was asked from (its answer is checked
    against that, not against the state of a later tick)."""
    plan: MitigationPlan | None
    usage: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    stage: ModelStage = ModelStage.PLANNING
    diagnosis: Diagnosis | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True)
class Tick:
    """Everything one stage may look at."""
    incident: Obj
    snapshot: Snapshot
    settings: Settings
    now: dt.datetime
    signals: list[ServiceSignals] = field(default_factory=list)
    complete: bool = False  # the metrics source answered
    window: str = WINDOW  # the rate window of the signals
    incidents: list[Obj] = field(default_factory=list)  # the namespace's Incidents (blast-radius limits)
    logs: list[str] = field(default_factory=list)
    traces: list[TraceFacts] = field(default_factory=list)
    model: ModelAnswer | None = None
    model_configured: bool = False  # the operator has a model to ask
    # The diagnosis asked in the background at triage, as the runner holds it: its answer once it
    # came; whether this process is still asking it; how long the daemon loop waited for it after
    # the Incident finished before it stopped waiting (0: it did not give up).
    late: ModelAnswer | None = None
    asking: bool = False
    gave_up_after: float = 0.0

    @property
    def name(self) -> str:
        return str(self.incident["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.incident["metadata"]["namespace"])

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.incident.get("status") or {})

    @cached_property
    def spec(self) -> IncidentSpec:
        return IncidentSpec.model_validate(self.incident.get("spec") or {})

    @property
    def phase(self) -> Phase:
        return Phase(self.status.get("phase") or Phase.DETECTED)

    @property
    def attempt(self) -> int:
        """The attempt under way (or the next one)."""
        return int(self.status.get("attempts") or 0) + 1

    @property
    def records(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.status.get("actions") or []]


# -- what a tick needs read (the runner asks before reading) ---------------------------------------

def window_for(status: dict[str, Any], now: dt.datetime) -> str:
    """Validation measures from the start of its window (so the outage before it does not linger
    in the figures); every other reading uses the detector's rate window."""
    start = parse(status.get("validationWindowStart"))
    if status.get("phase") == Phase.VALIDATING and start is not None:
        return f"{max(15, int((now - start).total_seconds()))}s"
    return WINDOW


@dataclass(frozen=True)
class Needs:
    snapshot: bool
    metrics: bool
    evidence: bool  # logs and traces
    incidents: bool
    model: bool


def needs(status: dict[str, Any], now: dt.datetime, settings: Settings) -> Needs:
    phase = status.get("phase") or Phase.DETECTED
    start = parse(status.get("validationWindowStart"))
    judging = phase == Phase.VALIDATING and start is not None and \
        (now - start).total_seconds() >= min(EARLY_SECONDS, settings.settle_seconds)
    triage = phase in (Phase.TRIAGING, Phase.PLANNING)
    return Needs(snapshot=phase in (Phase.TRIAGING, Phase.PLANNING, Phase.MITIGATING, Phase.VALIDATING),
                 metrics=triage or judging, evidence=triage, incidents=phase == Phase.MITIGATING,
                 model=triage)


# -- shared reasoning --------------------------------------------------------------------------------

def move(phase: Phase, message: str = "", reason: str = "", **fields: Any) -> Status:
    return Status(fields, phase=phase, message=message, reason=reason)


def note(message: str = "", **fields: Any) -> Status:
    return Status(fields, message=message)


def fail(reason: str, message: str) -> Step:
    """Bad input: the Incident cannot be handled as it is. Say why (phase Failed, condition
    Valid=False with `reason`) and stop; nothing is done to the cluster."""
    return Step((move(Phase.FAILED, message, reason),))


def primary_symptom(t: Tick) -> Symptom:
    spec = t.spec
    return Symptom(kind=spec.symptom, service=spec.service, signal=spec.summary or spec.symptom, source=spec.source)


def evidence_of(t: Tick) -> Evidence:
    primary, thresholds = primary_symptom(t), t.settings.thresholds()
    return evidence(t.snapshot, symptoms_of(primary, t.signals, thresholds), t.logs, t.traces,
                    confirmed=corroborated(primary, t.signals, thresholds))


def tried(t: Tick) -> set[str]:
    """The actions of earlier attempts (`type:Kind/name`): never planned again."""
    return {f"{a['type']}:{a['target']['kind']}/{a['target']['name']}" for a in t.records
            if int(a.get("attempt", 0)) < t.attempt}


def model_use(t: Tick) -> selection.Ask:
    """Whether this tick's stage asks the model (the runner asks only then), and why or why not."""
    stage = {Phase.TRIAGING: ModelStage.TRIAGE, Phase.PLANNING: ModelStage.PLANNING}.get(t.phase)
    if stage is None:
        return selection.Ask(False, "")
    policy = selection.effective_policy(t.settings.planner, t.spec.planner)
    budget = selection.Budget(t.settings.llm_token_budget, tokens_spent(t.status.get("llm")))
    return selection.decide(stage, policy, configured=t.model_configured, triage=t.settings.llm_triage,
                            budget=budget, rules_plan=planner.plan(evidence_of(t), tried(t)),
                            last_plan_by=(t.status.get("plan") or {}).get("planner"), attempt=t.attempt)


def model_status(t: Tick, stage: ModelStage, answer: ModelAnswer | None,
                 fallback: str) -> tuple[dict[str, Any], list[Op]]:
    return llm_status(t.status, t.now, stage, answer, fallback)


def llm_status(status: dict[str, Any], now: dt.datetime, stage: ModelStage, answer: ModelAnswer | None,
               fallback: str) -> tuple[dict[str, Any], list[Op]]:
    """`status.llm` after this stage (its calls, tokens and seconds; the fallback and why) and the
    Warning Event of a fallback; nothing when the model had no part in it."""
    total = status.get("llm")
    if answer is not None:
        total = add_usage(total, answer.usage)
    if not fallback:
        return ({"llm": total} if answer is not None else {}), []
    what = "diagnosis" if stage == ModelStage.TRIAGE else "plan"
    return ({"llm": with_fallback(total, stage, fallback, stamp(now))},
            [Event("Warning", "PlannerFallback", f"the rules' {what} is used: {fallback}"[:1000])])


def plan_actions(t: Tick) -> list[Action]:
    return [Action.model_validate(a) for a in (t.status.get("plan") or {}).get("actions") or []]


# -- the stages ----------------------------------------------------------------------------------------

def detected(t: Tick) -> Step:
    """Time to detect: from the symptom's onset (the detector's first breaching reading, in
    `spec.detectedAt`) to the Incident's creation."""
    created = parse(t.incident["metadata"].get("creationTimestamp")) or t.now
    onset = parse(t.spec.detected_at) or created
    return Step((move(Phase.TRIAGING, f"{t.spec.service}: {t.spec.symptom}", attempts=0,
                      detectedAt=stamp(created),
                      timeToDetect=seconds_text(max(0.0, (created - onset).total_seconds()))),), again=True)


def borne_out(t: Tick) -> bool:
    """Whether the signals show trouble on the Incident's path (its service or one it calls): an
    Incident's symptoms are a claim (anyone who may create an Incident makes one), acted on by the
    model's plan only when borne out."""
    path = set(path_from(t.spec.service))
    return any(b.service in path for b in breaches(t.signals, t.settings.thresholds()))


def metrics_missing(t: Tick) -> bool:
    """Triage and planning hold while the metrics source is down, unless the Kubernetes facts alone
    (all the signals there are then) bear the Incident out; validation needs the source always."""
    return not t.complete and not borne_out(t)


def hold_for_metrics(t: Tick, stage: str) -> Step:
    """Missing data is never health: with the metrics source down the stage holds its phase (nothing
    triaged, planned, judged or undone on part of the evidence), said once in status and an Event."""
    if (t.status.get("message") or "").startswith("waiting for the metrics source"):
        return NOTHING
    return Step((Event("Warning", "SignalsMissing", f"the metrics source does not answer: {stage} holds "
                       "(nothing is decided, applied or undone until it does)"),
                 note(f"waiting for the metrics source: {stage} holds, nothing decided or undone meanwhile")))


def triage(t: Tick) -> Step:
    ev = evidence_of(t)
    # Whether the service is one of the application's is a fact of the API, not of the metrics: an
    # Incident about no workload fails even while the metrics source is away.
    if not any(w.service == t.spec.service for w in ev.workloads) and \
            t.snapshot.known_good_object("Deployment", t.spec.service) is None:
        return fail("UnknownService", f"{t.spec.service!r} is not a workload of the application in {t.namespace} "
                                      f"(known: {', '.join(w.service for w in ev.workloads)})")
    if metrics_missing(t):
        return hold_for_metrics(t, "triage")
    facts = [f"{w.deployment}: {w.ready}/{w.desired} ready, revision {w.revision}"
             + (f" (rolled out {w.rolled_out_seconds_ago:.0f}s ago)" if w.rolled_out_seconds_ago is not None
                and w.rolled_out_seconds_ago < 900 else "")
             + (", crash-looping" if w.crash_looping else "") for w in ev.workloads]
    changed = [f"{c.name}.{c.known_good_key} differs from its known-good version" for c in ev.configs
               if c.differs_from_known_good]
    changed += [sv.problem + (" (differs from its known-good version)" if sv.differs_from_known_good else "")
                for sv in ev.services if sv.problem]
    traced = [f"trace {x.trace_id[:8]} ({x.root}, {x.duration_ms:.0f} ms): "
              + (", ".join(x.failed_spans[:2]) if x.failed_spans else f"slowest {x.slowest_span}")
              for x in ev.traces[:2]]
    summary = "; ".join(facts + changed + traced)
    diagnosis, fallback = diagnose(t, ev)
    llm, ops = model_status(t, ModelStage.TRIAGE, t.model if t.model and t.model.stage == ModelStage.TRIAGE
                            else None, fallback)
    message = "evidence collected"
    ask = model_use(t)
    if ask.ask and ask.background and t.model is None:  # a rule acts at once; the model diagnoses meanwhile
        ops.insert(0, Question(ModelStage.TRIAGE, ev))
        diagnosis[PENDING] = stamp(t.now)
        message += "; the model's diagnosis is asked in the background (the rules' is shown until it comes)"
    return Step((*ops, move(Phase.PLANNING, message,
                            symptoms=[s.model_dump(by_alias=True, exclude_none=True) | {"observedAt": stamp(t.now)}
                                      for s in ev.symptoms],
                            triageSummary=summary[:4000], diagnosis=diagnosis, **llm)), again=True)


def diagnose(t: Tick, ev: Evidence) -> tuple[dict[str, Any], str]:
    """(`status.diagnosis`, why the model's was not used): the model's diagnosis when it came and
    passes the check, else the rules'. Anything wrong with the model's answer falls back."""
    rules = diagnoses.from_rules(ev, planner.plan(ev, set()))
    answer, fallback = t.model, ""
    if answer is None or answer.stage != ModelStage.TRIAGE:
        ask = model_use(t)
        fallback = ask.why if ask.fallback else ""
    else:
        found, fallback = model_diagnosis(answer, ev)
        if found is not None:
            return found, ""
    return rules.model_dump(by_alias=True, exclude_none=True), fallback


def model_diagnosis(answer: ModelAnswer, ev: Evidence | None) -> tuple[dict[str, Any] | None, str]:
    """(the model's diagnosis as `status.diagnosis`, None and why it is not used): it must say
    something and suspect only an object of the evidence it was asked from."""
    if answer.diagnosis is None:
        return None, answer.error or "the model gave no diagnosis"
    if ev is None:
        return None, "the model's diagnosis was refused: the evidence it was asked from is not known"
    try:
        return diagnoses.checked(answer.diagnosis, ev).model_dump(by_alias=True, exclude_none=True), ""
    except Exception as exc:  # noqa: BLE001 - untrusted answer: whatever is wrong with it, the rules'
        return None, f"the model's diagnosis was refused: {exc}"


# -- the diagnosis asked in the background ----------------------------------------------------------

PENDING = "pendingSince"  # status.diagnosis.pendingSince: the model's diagnosis is awaited since then
DIAGNOSIS_FIELDS = ("summary", "rootCause", "suspect", "evidence", "confidence", "diagnosedBy")
NOT_RECEIVED = ("the model's diagnosis was not received: the operator process that asked it stopped before "
                "the answer (the rules' diagnosis stays)")


def diagnosis_pending(status: dict[str, Any]) -> bool:
    """Whether the model's diagnosis, asked in the background at triage, is still awaited."""
    diagnosis = status.get("diagnosis")
    return isinstance(diagnosis, dict) and bool(diagnosis.get(PENDING))


def late_wait_seconds(settings: Settings) -> float:
    """How long a finished Incident's daemon waits for the diagnosis asked in the background: as
    long as one question may take (every try timing out)."""
    return settings.llm_timeout_seconds * (settings.llm_max_retries + 1)


def late(t: Tick) -> Step | None:
    """The step recording the diagnosis asked in the background, when it is due (None: none is
    awaited, or it is still being asked): its answer came; the daemon loop stopped waiting for it;
    or this operator process does not hold the question (the one that asked it stopped)."""
    if not diagnosis_pending(t.status):
        return None
    if t.late is not None:
        return late_diagnosis(t.status, t.late, t.now)
    if t.gave_up_after:
        return late_diagnosis(t.status, None, t.now, f"the model's diagnosis did not come within "
                                                     f"{seconds_text(t.gave_up_after)} of the incident's end")
    if not t.asking:
        return late_diagnosis(t.status, None, t.now, NOT_RECEIVED)
    return None


def late_diagnosis(status: dict[str, Any], answer: ModelAnswer | None, now: dt.datetime,
                   missing: str = "") -> Step:
    """The model's diagnosis asked in the background, recorded whatever the phase: checked as
    triage checks it (against the evidence it was asked from), it replaces the rules' diagnosis
    (the plan's side of `status.diagnosis` stays), and `status.llm` counts what it cost; anything
    wrong with it (or no answer: `missing` says why) keeps the rules' diagnosis, and the reason is
    a fallback. The phase and the message are left as they are."""
    found, fallback = (None, missing) if answer is None else model_diagnosis(answer, answer.evidence)
    diagnosis: dict[str, Any] = {PENDING: None}
    if found is not None:
        diagnosis |= dict.fromkeys(DIAGNOSIS_FIELDS) | found
    try:
        llm, ops = llm_status(status, now, ModelStage.TRIAGE, answer, fallback)
    except (TypeError, ValueError, AttributeError):  # a status.llm not as the operator wrote it: start again
        llm, ops = llm_status({}, now, ModelStage.TRIAGE, answer, fallback)
    return Step((*ops, Status({"diagnosis": diagnosis, **llm})), again=True)


def unhealthy_rollback(plan: MitigationPlan, ev: Evidence, snap: Snapshot) -> str:
    """Why a rollback of the model's plan would not return its Deployment to the template last seen
    healthy, or "": where the operator has a healthy record of the Deployment, the only revision to go
    back to is the one with that template (the model once chose a crashing revision of an earlier
    fault). Without a record, vetting alone decides."""
    for a in plan.actions:
        if a.type != ActionType.ROLLBACK or snap.known_good_object("Deployment", a.target.name) is None:
            continue
        w = next((x for x in ev.workloads if x.deployment == a.target.name), None)
        healthy = None if w is None else w.healthy_revision
        if a.revision != healthy:
            where = f"revision {healthy} is" if healthy is not None else "the current template is"
            return f"deployment/{a.target.name} revision {a.revision} is not the template last seen healthy ({where})"
    return ""


def choose_plan(t: Tick, tried_keys: set[str]) -> tuple[MitigationPlan, str]:
    """(plan, why the model's plan was not used): the model's plan when one came and it passes
    every check (the same `vetting.vet` for every model plan); else the rules' plan. Anything
    wrong with the model's answer, whatever it raises, falls back to the rules. Unless the signals
    bear the Incident out (`borne_out`), the model's plan is not used, and the rules do only what
    the operator's own known-good record says."""
    ev = evidence_of(t)
    rules = planner.plan(ev, tried_keys)
    answer = t.model
    if answer is None or answer.stage != ModelStage.PLANNING:
        ask = model_use(t)
        return rules, ask.why if ask.fallback else ""
    if not borne_out(t):
        return rules, f"the signals do not bear out {t.spec.symptom} on {t.spec.service}: the model's plan is not used"
    if answer.plan is None:
        return rules, answer.error or "the model gave no plan"
    if not answer.plan.actions and rules.actions:
        return rules, "the model proposed no action"
    try:
        plancheck.vet(answer.plan, t.snapshot, tried_keys)
    except acts.ActionRefused as exc:
        return rules, f"the model's plan was refused: {exc}"
    except Exception as exc:  # noqa: BLE001 - untrusted answer: a check it breaks is a refusal too
        return rules, f"the model's plan was refused: {type(exc).__name__}: {str(exc)[:300]}"
    unhealthy = unhealthy_rollback(answer.plan, ev, t.snapshot)
    if unhealthy:
        return rules, f"the model's plan was refused: {unhealthy}"
    return answer.plan, ""


def plan(t: Tick) -> Step:
    if metrics_missing(t):
        return hold_for_metrics(t, "planning")
    p, fallback = choose_plan(t, tried(t))
    try:  # whoever planned it, the rules included: the whole plan, before any of it is done
        plancheck.vet(p, t.snapshot, tried(t))
    except acts.ActionRefused as exc:
        return Step((move(Phase.ESCALATED, f"the {p.planner} planner's plan was refused: {exc}"),))
    attempt = t.attempt
    # The plan's side of the diagnosis (its root cause and confidence are triage's and stay).
    diagnosis: dict[str, Any] = {"planner": p.planner, "reasoning": p.expected_effect[:4000],
                                 "fallbackReason": fallback[:1000] or None}
    dumped = p.model_dump(by_alias=True, exclude_none=True) | {"attempt": attempt}
    extra: dict[str, Any] = {"plan": dumped | {"seal": seal(t.settings.seal_key(), _sealed_plan(t, dumped))},
                             "diagnosis": diagnosis}
    llm, events = model_status(t, ModelStage.PLANNING, t.model if t.model and t.model.stage == ModelStage.PLANNING
                               else None, fallback)
    extra.update(llm)
    ops: list[Op] = list(events)
    if not p.actions:
        return Step((*ops, move(Phase.ESCALATED, f"no mitigation left to try: {p.root_cause}", **extra)))
    before = health_of(t.signals, t.spec.service, t.window, t.complete)
    # One entry per attempt (planning again for the same attempt replaces it).
    validation = [v for v in t.status.get("validation") or [] if v.get("attempt") != attempt]
    validation.append({"attempt": attempt, "at": stamp(t.now),
                       "before": before.model_dump(by_alias=True, exclude_none=True)})
    extra["validation"] = validation
    mode = effective_mode(t.settings.mode, t.spec.mode)
    steps = ", ".join(f"{a.type} {a.target.kind.lower()}/{a.target.name}" for a in p.actions)
    if mode == Mode.DRY_RUN:
        return Step((*ops, move(Phase.DRY_RUN, f"dry run: would {steps}", **extra)))
    if mode == Mode.APPROVE:
        return Step((*ops, move(Phase.AWAITING_APPROVAL, f"waiting for approval of attempt {attempt} to {steps} "
                                                          f"(sre-operator approve, or the annotation "
                                                          f"{APPROVE_ANNOTATION}=attempt-{attempt})", **extra)))
    return Step((*ops, move(Phase.MITIGATING, f"attempt {attempt}: {steps}", **extra)), again=True)


# Strictest first: an Incident may make the operator more careful than it is told to be, never less.
STRICTNESS = (Mode.DRY_RUN, Mode.APPROVE, Mode.AUTO)


def effective_mode(operator_mode: str, incident_mode: str | None) -> Mode:
    """The stricter of the operator's mode and the one the Incident asks for: whoever can create an
    Incident cannot loosen the policy the operator runs under."""
    modes = [Mode(operator_mode)] + ([Mode(incident_mode)] if incident_mode else [])
    return min(modes, key=STRICTNESS.index)


def await_approval(t: Tick) -> Step:
    """An approval (or a rejection) names the attempt it is about: one given for attempt 1 never
    approves attempt 2. Who gave it goes into the timeline."""
    annotations = t.incident["metadata"].get("annotations") or {}
    meant = f"attempt-{t.attempt}"
    who = str(annotations.get(APPROVED_BY_ANNOTATION) or "someone")[:100]
    if annotations.get(REJECT_ANNOTATION) == meant:
        return Step((move(Phase.ESCALATED, f"attempt {t.attempt} rejected by {who}: a person takes it from here"),))
    if annotations.get(APPROVE_ANNOTATION) == meant:
        return Step((move(Phase.MITIGATING, f"attempt {t.attempt} approved by {who}"),), again=True)
    return NOTHING


# -- what the operator wrote, and only that, is acted on --------------------------------------------

def _sealed_plan(t: Tick, plan_: dict[str, Any]) -> dict[str, Any]:
    return {"incident": t.incident["metadata"].get("uid", ""), "attempt": plan_.get("attempt"),
            "actions": plan_.get("actions") or []}


def _sealed_record(t: Tick, rec: dict[str, Any]) -> dict[str, Any]:
    """What an action record's seal covers: everything that says what to write, now or to undo it."""
    return {"incident": t.incident["metadata"].get("uid", ""),
            **{k: rec.get(k) for k in ("attempt", "index", "type", "target", "intent", "undo")}}


def _seal_record(t: Tick, rec: dict[str, Any]) -> None:
    rec["seal"] = seal(t.settings.seal_key(), _sealed_record(t, rec))


def untrusted(t: Tick, records: list[dict[str, Any]]) -> str | None:
    """Why the plan or one of `records` is not to be acted on (None: each carries the operator's seal
    over what it says). Whoever may write `incidents/status` can write a plan, an intent, an undo
    template or a target namespace there; only the operator can seal them."""
    key, plan_ = t.settings.seal_key(), dict(t.status.get("plan") or {})
    if not verify(key, _sealed_plan(t, plan_), plan_.get("seal")) or plan_.get("attempt") != t.attempt:
        return f"the plan in status is not the one this operator made for attempt {t.attempt}"
    for rec in records:
        if not verify(key, _sealed_record(t, rec), rec.get("seal")):
            return f"action record {rec.get('index')} of attempt {rec.get('attempt')} is not as this operator wrote it"
    return None


def tampered(why: str) -> Step:
    """A record not as the operator wrote it (changed by another hand, or sealed by an operator
    process with another key): nothing is applied or undone; a person looks."""
    return fail("RecordTampered", f"{why}: nothing applied or undone (changed by someone else, or written by an "
                                  "operator process with another SRE_OPERATOR_RECORD_KEY)")


def approved(t: Tick) -> str | None:
    """Why this attempt may not act yet, by the mode (None: it may): the phase in status is no
    approval, whoever wrote it."""
    mode = effective_mode(t.settings.mode, t.spec.mode)
    if mode == Mode.DRY_RUN:
        return "the operator runs in dry-run mode: nothing is applied"
    annotations = t.incident["metadata"].get("annotations") or {}
    if mode == Mode.APPROVE and annotations.get(APPROVE_ANNOTATION) != f"attempt-{t.attempt}":
        return f"attempt {t.attempt} is not approved ({APPROVE_ANNOTATION}=attempt-{t.attempt}): waiting"
    return None


def _failed(t: Tick, records: list[dict[str, Any]], rec: dict[str, Any], why: str) -> Step:
    rec.update(outcome=Outcome.FAILED.value, message=why[:1000], finishedAt=stamp(t.now))
    if rec not in records:
        records.append(rec)
    return Step((move(Phase.UNDOING, f"action {rec['type']} failed: {why}", actions=records),), again=True)


def mitigate(t: Tick) -> Step:
    """One action per tick: prepared from the snapshot and recorded `pending` with its intent;
    then (next tick) applied and recorded `applied`. When every action is done: Validating."""
    attempt, records, actions = t.attempt, t.records, plan_actions(t)
    why = untrusted(t, [r for r in records if r.get("attempt") == attempt and (r.get("intent") or r.get("undo"))])
    if why is not None:
        return tampered(why)
    waiting = approved(t)
    if waiting is not None:
        dry = effective_mode(t.settings.mode, t.spec.mode) == Mode.DRY_RUN
        held = Phase.DRY_RUN if dry else Phase.AWAITING_APPROVAL
        return Step((move(held, waiting),))
    if not any(r.get("attempt") == attempt for r in records):  # before the attempt's first action
        targets = {f"{a.target.kind}/{a.target.name}" for a in actions}
        decision = limits.check(t.incident, t.incidents, targets, t.now, t.settings.caps(), t.snapshot.ledger)
        if decision.verdict == "wait":
            return Step((note(decision.message),)) if t.status.get("message") != decision.message else NOTHING
        if decision.verdict == "escalate":
            return Step((move(Phase.ESCALATED, decision.message),))
    for index, action in enumerate(actions):
        rec = next((r for r in records if r.get("attempt") == attempt and r.get("index") == index), None)
        if rec is not None and rec.get("outcome") in DONE_OUTCOMES:
            continue  # done before: never repeated
        if rec is None or not rec.get("intent"):
            fresh = {"attempt": attempt, "index": index, "type": action.type,
                     "target": {"kind": action.target.kind, "namespace": t.namespace, "name": action.target.name},
                     "startedAt": stamp(t.now)}
            try:
                prepared = acts.prepare(action, t.snapshot)
            except (acts.ActionRefused, ValueError) as exc:
                return _failed(t, records, rec or fresh, str(exc))
            if rec is None:
                rec = fresh
                records.append(rec)
            rec.update(outcome=Outcome.PENDING.value, message=prepared.summary, undo=prepared.undo,
                       intent=acts.intent_of(prepared))
            _seal_record(t, rec)
            # Recorded (in the ledger and the Incident) before it takes effect.
            return Step((ledger_write(t, rec), note(actions=records)), again=True)
        target_now = None if rec["target"]["kind"] == "Pod" else t.snapshot.get(rec["target"]["kind"],
                                                                                rec["target"]["name"])
        if acts.took_effect(rec["intent"], target_now):
            rec.update(outcome=Outcome.APPLIED.value, finishedAt=stamp(t.now),
                       message=f"{rec.get('message', '')} (had taken effect before a restart)")
            return Step((note(actions=records),), again=True)
        try:
            write = write_of(rec["target"], rec["intent"])
        except acts.ActionRefused as exc:
            return _failed(t, records, rec, str(exc))
        failed = dict(rec)
        rec.update(outcome=Outcome.APPLIED.value, finishedAt=stamp(t.now))
        failed_records = [failed if r is rec else r for r in records]
        return Step((write, note(actions=records)), again=True, on_refused=partial(_failed, t, failed_records, failed))
    return Step((move(Phase.VALIDATING, f"attempt {attempt} applied; waiting for the rollout, then measuring",
                      mitigatedAt=stamp(t.now), validationWindowStart=None),))


def ledger_write(t: Tick, rec: dict[str, Any]) -> Write:
    """The action ledger's entry for an action begun (`limits`: what the per-hour limit counts)."""
    target = f"{rec['target']['kind']}/{rec['target']['name']}"
    action_id = f"{t.incident['metadata'].get('uid', t.name)}/{rec['attempt']}/{rec['index']}"
    data = limits.recorded(t.snapshot.ledger, target, action_id, t.now)
    if t.snapshot.ledger is None:
        return Write("create", "ConfigMap", ACTION_LEDGER, "merge",
                     {"metadata": {"name": ACTION_LEDGER, "labels": MANAGED_BY}, "data": data})
    return Write("patch", "ConfigMap", ACTION_LEDGER, "merge", {"data": data})


def write_of(target: dict[str, Any], intent: dict[str, Any]) -> Write:
    """The write a recorded intent asks for (`patch` is the older records' name of `body`)."""
    verb = intent.get("verb")
    if verb not in ("patch", "delete", "create"):
        raise acts.ActionRefused(f"a recorded intent with verb {verb!r}")
    return Write(verb, target["kind"], target["name"], intent.get("patchType") or "merge",
                 intent.get("body", intent.get("patch")))


def touched_deployments(t: Tick) -> set[str]:
    """The Deployments this attempt acted on, and the service's own."""
    return {a["target"]["name"] for a in t.records
            if a.get("attempt") == t.attempt and a["target"]["kind"] == "Deployment"} | {t.spec.service}


def rolled_out(t: Tick) -> bool:
    """Every Deployment this attempt touched (and the service's own) finished its rollout, with no
    old pod still terminating: only then do the figures describe the mitigated system."""
    names = touched_deployments(t)
    for name in names:
        d = t.snapshot.get("Deployment", name)
        if d is None:
            continue
        st, want = d.get("status", {}), d["spec"].get("replicas", 1)
        if st.get("observedGeneration", 0) < d["metadata"].get("generation", 0):
            return False
        if not (st.get("updatedReplicas", 0) == st.get("replicas", 0) == st.get("availableReplicas", 0) == want):
            return False
        if any(p["metadata"].get("deletionTimestamp") for p in t.snapshot.of("Pod")
               if (p["metadata"].get("labels") or {}).get(NAME_LABEL) == name):
            return False
    return True


def mitigation_broke(t: Tick, since: dt.datetime) -> str:
    """Why the pods this attempt's rollout made will never serve (crash-looping, OOM-killed, unable
    to start), or "": conclusive at once, so validation need not wait for a rollout that cannot end
    (a model's rollback to a crashing revision waited out the whole rollout timeout). Only pods
    created since the mitigation count: the faulty pods it replaces may still be crashing."""
    names = touched_deployments(t)
    since = since.replace(microsecond=0)  # creationTimestamp has whole seconds
    why = []
    for name in sorted(names):
        made = [p for p in t.snapshot.of("Pod") if (p["metadata"].get("labels") or {}).get(NAME_LABEL) == name
                and (created := parse(p["metadata"].get("creationTimestamp"))) is not None and created >= since]
        states = pod_states.read(made, t.now)
        if states.crash_looping or states.oom_killed:
            why.append(f"{name}'s new pods are {'OOM-killed' if states.oom_killed else 'crash-looping'}")
        elif states.never_starting:
            why.append(f"{name}'s new pods cannot start: {states.never_starting[0]}")
    return "; ".join(why)


def structurally_healthy(t: Tick) -> bool:
    """The service's own state says the fault is gone: every replica it wants is ready, nothing
    crashes or cannot start, and no Kubernetes-level breach is left on its path (its Service reaches
    its pods, nothing seen healthy is missing)."""
    mine = next((s for s in t.signals if s.service == t.spec.service), None)
    if mine is None or mine.missing or not mine.desired or mine.ready != mine.desired:
        return False
    path = set(path_from(t.spec.service))
    return not any(b.source == "kubernetes" and b.service in path
                   for b in breaches(t.signals, t.settings.thresholds()))


def validate(t: Tick) -> Step:
    """Judge the mitigated system: as soon as the evidence is conclusive (within the SLO over at
    least EARLY_SECONDS of enough requests), else after the settle window. Missing data is never
    health and never failure: with the metrics source down the phase holds (nothing is judged or
    undone); with too little traffic to measure, a structural symptom is judged by the service's own
    state, and anything else keeps measuring, then goes to a person without undoing a fix."""
    cfg, now, status = t.settings, t.now, t.status
    mitigated = parse(status.get("mitigatedAt")) or now
    start = parse(status.get("validationWindowStart"))
    if start is None:
        broke = mitigation_broke(t, mitigated)
        if broke:
            validation, entry = _entry(t)
            entry.update(at=stamp(now), verdict="worse", passed=False, message=broke[:1000])
            return Step((move(Phase.UNDOING, f"validation failed (worse): {broke}", validation=validation),),
                        again=True)
        if rolled_out(t) or (now - mitigated).total_seconds() > cfg.rollout_timeout_seconds:
            return Step((note(f"rolled out; measuring for up to {cfg.settle_seconds:.0f}s",
                              validationWindowStart=stamp(now)),))
        return NOTHING
    elapsed = (now - start).total_seconds()
    if elapsed < min(EARLY_SECONDS, cfg.settle_seconds):
        return NOTHING
    if not t.complete:  # the metrics source does not answer: hold, judge nothing, undo nothing
        return hold_for_metrics(t, "validation")
    after = health_of(t.signals, t.spec.service, t.window, t.complete)
    if elapsed < cfg.settle_seconds:  # early: only a conclusive pass ends the window now
        early = judge(_before(t), after, cfg.slo())
        if after.complete and early.passed:
            return _resolve(t, after, f"{early.message} (conclusive after {elapsed:.0f}s)", early.verdict)
        return NOTHING
    if not after.complete:
        return _too_little_traffic(t, after, elapsed - cfg.settle_seconds)
    return _verdict(t, after)


def _before(t: Tick) -> Health:
    entry = next((v for v in reversed(t.status.get("validation") or []) if v.get("attempt") == t.attempt), None)
    return Health.model_validate((entry or {}).get("before") or {"complete": False})


def _entry(t: Tick) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    validation = [dict(v) for v in t.status.get("validation") or []]
    entry = next((v for v in reversed(validation) if v.get("attempt") == t.attempt), None)
    if entry is None:
        entry = {"attempt": t.attempt, "before": {"complete": False}}
        validation.append(entry)
    return validation, entry


def _resolve(t: Tick, after: Health, message: str, verdict: str = "better") -> Step:
    validation, entry = _entry(t)
    entry.update(at=stamp(t.now), after=after.model_dump(by_alias=True, exclude_none=True), verdict=verdict,
                 passed=True, message=message[:1000])
    onset = parse(t.spec.detected_at) or parse(t.status.get("detectedAt")) or t.now
    return Step((move(Phase.RESOLVED, f"validated: {message}", validation=validation, resolvedAt=stamp(t.now),
                      attempts=t.attempt, timeToMitigate=seconds_text((t.now - onset).total_seconds())),))


def _too_little_traffic(t: Tick, after: Health, waited: float) -> Step:
    """The source answered, but the window holds too few requests to measure the SLO."""
    if t.spec.symptom in STRUCTURAL and structurally_healthy(t):
        return _resolve(t, after, "the service's own state is healthy again (every replica ready, nothing "
                                  "missing or failing to start); too little traffic to measure its SLO")
    if waited >= t.settings.signal_wait_seconds * 3:
        return Step((move(Phase.ESCALATED, "too little traffic to tell whether the mitigation worked; it stays "
                                           "in place (it restored the last healthy state) and a person is needed"),))
    if (t.status.get("message") or "").startswith("too little traffic"):
        return NOTHING
    return Step((Event("Normal", "MeasuringLonger", "too few requests in the window to judge the SLO yet: "
                       "measuring longer (not a failure)"),
                 note("too little traffic to judge yet: measuring longer")))


def _verdict(t: Tick, after: Health) -> Step:
    cfg, now = t.settings, t.now
    validation, entry = _entry(t)
    before = Health.model_validate(entry.get("before") or {"complete": False})
    verdict = judge(before, after, cfg.slo())
    measured = after.model_dump(by_alias=True, exclude_none=True)
    if next_step(verdict, bool(entry.get("extended"))) == "extend":
        entry.update(extended=True, at=stamp(now), after=measured,
                     message=f"better, not yet within SLO ({verdict.message}): measuring again")
        return Step((note(f"better but not yet within SLO; measuring another {cfg.settle_seconds:.0f}s",
                          validation=validation, validationWindowStart=stamp(now)),))
    if verdict.passed:
        return _resolve(t, after, verdict.message, verdict.verdict)
    entry.update(at=stamp(now), after=measured, verdict=verdict.verdict, passed=verdict.passed,
                 message=verdict.message[:1000])
    return Step((move(Phase.UNDOING, f"validation failed ({verdict.verdict}): {verdict.message}",
                      validation=validation),), again=True)


def undo(t: Tick) -> Step:
    """One applied action of the attempt per tick, the last first, restored from its undo record
    (a restore is idempotent: repeated after a kill, it restores the same values); then the next
    attempt, or Escalated after maxAttempts."""
    attempt, records = t.attempt, t.records
    undo_log = [dict(u) for u in t.status.get("undoLog") or []]
    handled = {u.get("index") for u in undo_log if u.get("attempt") == attempt}
    todo = sorted((r for r in records if r.get("attempt") == attempt and r.get("outcome") == Outcome.APPLIED
                   and r.get("index") not in handled), key=lambda r: -int(r["index"]))
    if todo:
        rec = todo[0]
        if not verify(t.settings.seal_key(), _sealed_record(t, rec), rec.get("seal")):
            return tampered(f"action record {rec.get('index')} of attempt {attempt} is not as this operator wrote it")
        target = rec["target"]
        entry = {"attempt": attempt, "index": rec["index"], "action": rec["type"],
                 "target": f"{target['kind']}/{target['name']}", "at": stamp(t.now)}
        try:
            undoing = acts.undo_of(rec)
        except acts.ActionRefused as exc:
            return Step((note(undoLog=[*undo_log, {**entry, "outcome": "failed", "message": str(exc)[:1000]}]),),
                        again=True)
        write = None if undoing is None else Write(undoing.verb, target["kind"], target["name"],
                                                   undoing.patch_type or "merge", undoing.body)
        if write is None:
            return Step((note(undoLog=[*undo_log, {**entry, "outcome": "skipped", "message": "nothing to undo"}]),),
                        again=True)
        undone = [{**r, "outcome": Outcome.UNDONE.value} if r is rec else r for r in records]
        done = {**entry, "outcome": "undone", "message": "restored from the undo record"}
        return Step((write, note(actions=undone, undoLog=[*undo_log, done])), again=True,
                    on_refused=lambda why: Step((note(undoLog=[*undo_log, {**entry, "outcome": "failed",
                                                                           "message": why[:1000]}]),), again=True))
    if attempt >= t.spec.max_attempts:
        return Step((move(Phase.ESCALATED, f"{attempt} attempt(s) did not restore the SLOs; a person is needed",
                          attempts=attempt),))
    return Step((move(Phase.PLANNING, f"attempt {attempt} undone; planning attempt {attempt + 1}",
                      attempts=attempt),), again=True)


STAGES: dict[Phase, Callable[[Tick], Step]] = {
    Phase.DETECTED: detected,
    Phase.TRIAGING: triage,
    Phase.PLANNING: plan,
    Phase.AWAITING_APPROVAL: await_approval,
    Phase.MITIGATING: mitigate,
    Phase.VALIDATING: validate,
    Phase.UNDOING: undo,
}


def advance(t: Tick) -> Step:
    """The step for this tick: nothing for a finished Incident, Failed for one the operator may not
    or cannot handle, else its phase's stage."""
    try:
        phase = t.phase
    except ValueError:
        return fail("InvalidIncident", f"unknown phase {t.status.get('phase')!r}")
    recorded = late(t)  # whatever the phase: the Incident may have finished before the answer came
    if recorded is not None:
        return recorded
    if phase in TERMINAL:
        return NOTHING
    if not t.settings.acts_in(t.namespace):
        return fail("NamespaceNotWatched", f"namespace {t.namespace!r} is not one the operator acts in "
                                           f"({', '.join(sorted(t.settings.watched())) or 'none'})")
    try:
        return STAGES[phase](t)
    except (ValidationError, KeyError, TypeError) as exc:  # the Incident itself cannot be read
        return fail("InvalidIncident", f"cannot handle this incident: {type(exc).__name__}: {str(exc)[:500]}")


def settle(op: Status, status: dict[str, Any], generation: int, now: dt.datetime) -> tuple[dict[str, Any], list[Event]]:
    """A stage's status op as the patch to persist: its fields and message, and when it moves the
    phase, the timeline entry, the Event and the conditions (the one place they are made)."""
    patch = dict(op.fields)
    events: list[Event] = []
    if op.message:
        patch["message"] = op.message[:4000]
    current = str(status.get("phase") or Phase.DETECTED)
    phase = op.phase
    if phase is not None and phase != current:
        patch["phase"] = phase.value
        timeline = [*(status.get("timeline") or []), {"at": stamp(now), "phase": phase.value,
                                                      "message": op.message[:1000]}]
        patch["timeline"] = timeline[-TIMELINE:]
        events.append(Event("Warning" if phase in WARNING_PHASES else "Normal", phase.value, op.message or phase))
    if phase is None and current in Phase.__members__.values():
        phase = Phase(current)
    if phase is not None:
        conds = conditions(phase, generation, now, status.get("conditions"), op.reason, op.message)
        if conds != status.get("conditions"):
            patch["conditions"] = conds
    return patch, events
