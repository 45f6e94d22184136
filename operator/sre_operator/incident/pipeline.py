"""One Incident's pipeline, one phase at a time, every step written to its status before the next
begins, so an operator killed at any point resumes where it stopped without repeating an action
that took effect (each action is recorded `pending` before it is applied and `applied` after).

Detected → Triaging → Planning → [AwaitingApproval] → Mitigating → Validating → Resolved
                                     ↘ DryRun            Validating → Undoing → Planning (next attempt)
                                                                              ↘ Escalated (maxAttempts)
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import actions as acts
from ..actions.base import body_of
from ..adapters.kube import Kube
from ..detection.detector import Thresholds, breaches
from ..detection.signals import Reader
from ..domain.models import Action, Evidence, Health, MitigationPlan, Symptom, Target
from ..domain.ports import ClusterError
from ..domain.snapshot import Snapshot
from ..planning import rules as planner
from ..planning import vetting as plancheck
from ..planning.llm import LlmError, LlmPlanner, add_usage
from . import limits
from .validation import Slo, judge, next_step

log = logging.getLogger("sre_operator.pipeline")
PLURAL = "incidents"
TERMINAL = ("Resolved", "Escalated", "DryRun", "Failed")
APPROVE_ANNOTATION = "sre.stratus.dev/approve"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)


def duration(seconds: float) -> str:
    return f"{seconds:.1f}s"


@dataclass
class Config:
    settle_seconds: float = 30.0
    signal_wait_seconds: float = 120.0  # after the settle window, how long to wait for missing signals
    rollout_timeout_seconds: float = 300.0  # judge anyway if the mitigated rollout never completes
    slo: Slo = field(default_factory=Slo)
    thresholds: Thresholds = field(default_factory=Thresholds)
    caps: limits.Caps = field(default_factory=limits.Caps)
    default_mode: str = "auto"
    # The namespaces the operator may act in (None: wherever it is run). An Incident elsewhere is
    # refused with a condition, whoever created it: the operator never acts outside them.
    watched: frozenset[str] | None = None


class IncidentRun:
    def __init__(self, kube: Kube, reader: Reader, incident: dict, config: Config,
                 llm: LlmPlanner | None = None, emit: Callable[[str, str, str], None] | None = None) -> None:
        self.kube, self.reader, self.config, self.llm = kube, reader, config, llm
        self.inc = incident
        self.emit = emit or (lambda etype, reason, msg: None)

    # -- status helpers ---------------------------------------------------------------------

    @property
    def status(self) -> dict:
        return self.inc.setdefault("status", {})

    @property
    def spec(self) -> dict:
        return self.inc["spec"]

    @property
    def namespace(self) -> str:
        return self.inc["metadata"]["namespace"]

    @property
    def attempt(self) -> int:
        return int(self.status.get("attempts") or 0) + 1

    def save(self, phase: str | None = None, message: str = "", **fields: object) -> None:
        st = self.status
        st.update(fields)
        if phase and phase != st.get("phase"):
            st["phase"] = phase
            timeline = list(st.get("timeline") or [])
            timeline.append({"at": ts(now()), "phase": phase, "message": message[:1000]})
            st["timeline"] = timeline[-50:]
            self.emit("Warning" if phase in ("Escalated", "Undoing", "Failed") else "Normal", phase,
                      message or phase)
        if message:
            st["message"] = message[:4000]
        self.kube.patch_status(PLURAL, self.namespace, self.inc["metadata"]["name"], st)

    def st_clear(self, key: str) -> None:
        """Remove a status field (a merge patch needs an explicit null)."""
        if key in self.status:
            self.status[key] = None

    # -- one step ---------------------------------------------------------------------------

    def step(self) -> bool:
        """Advance one phase; True when the incident reached a terminal phase."""
        phase = self.status.get("phase") or "Detected"
        if phase in TERMINAL:
            return True
        if self.config.watched is not None and self.namespace not in self.config.watched:
            self.fail("NamespaceNotWatched", f"namespace {self.namespace!r} is not one the operator acts in "
                                             f"({', '.join(sorted(self.config.watched)) or 'none'})")
            return True
        handler = {"Detected": self.detected, "Triaging": self.triage, "Planning": self.plan,
                   "AwaitingApproval": self.await_approval, "Mitigating": self.mitigate,
                   "Validating": self.validate, "Undoing": self.undo}[phase]
        handler()
        return (self.status.get("phase") or "") in TERMINAL

    def detected(self) -> None:
        created = parse(self.inc["metadata"].get("creationTimestamp")) or now()
        first = parse(self.spec.get("detectedAt")) or created
        self.save("Triaging", f"{self.spec['service']}: {self.spec['symptom']}", attempts=0,
                  detectedAt=ts(created), timeToDetect=duration(max(0.0, (created - first).total_seconds())))

    def _evidence(self) -> Evidence:
        primary = Symptom(kind=self.spec["symptom"], service=self.spec["service"],
                          signal=self.spec.get("summary") or self.spec["symptom"], source=self.spec.get("source",
                                                                                                          "prometheus"))
        # The service's other symptoms right now (a 502 storm is also slow): evidence, not incidents.
        signals, _ = self.reader.read()
        more = [b.as_symptom() for b in breaches(signals, self.config.thresholds)
                if b.service == primary.service and b.symptom != primary.kind]
        ev = self.reader.evidence([primary, *more])
        missing = [Target(kind=kind, name=name) for kind, name in self._snapshot().missing()]
        return ev.model_copy(update={"missing": missing})

    def fail(self, reason: str, message: str) -> None:
        """Bad input: the Incident cannot be handled as it is. Say why (phase Failed and a
        condition Valid=False) and stop; nothing is done to the cluster."""
        cond = {"type": "Valid", "status": "False", "reason": reason, "message": message[:4000],
                "lastTransitionTime": ts(now())}
        others = [c for c in self.status.get("conditions") or [] if c.get("type") != "Valid"]
        self.save("Failed", message, conditions=[*others, cond])

    def triage(self) -> None:
        ev = self._evidence()
        if not any(w.service == self.spec["service"] for w in ev.workloads):
            self.fail("UnknownService", f"{self.spec['service']!r} is not a workload of the application in "
                                        f"{self.namespace} (known: {', '.join(w.service for w in ev.workloads)})")
            return
        facts = [f"{w.deployment}: {w.ready}/{w.desired} ready, revision {w.revision}"
                 + (f" (rolled out {w.rolled_out_seconds_ago:.0f}s ago)" if w.rolled_out_seconds_ago is not None
                    and w.rolled_out_seconds_ago < 900 else "")
                 + (", crash-looping" if w.crash_looping else "") for w in ev.workloads]
        changed = [f"{c.name}.{c.known_good_key} differs from its known-good version" for c in ev.configs
                   if c.differs_from_known_good]
        changed += [sv.problem + (" (differs from its known-good version)" if sv.differs_from_known_good else "")
                    for sv in ev.services if sv.problem]
        traced = [f"trace {t.trace_id[:8]} ({t.root}, {t.duration_ms:.0f} ms): "
                  + (", ".join(t.failed_spans[:2]) if t.failed_spans else f"slowest {t.slowest_span}")
                  for t in ev.traces[:2]]
        summary = "; ".join(facts + changed + traced)
        self.save("Planning", "evidence collected",
                  symptoms=[s.model_dump(by_alias=True, exclude_none=True) | {"observedAt": ts(now())}
                            for s in ev.symptoms],
                  triageSummary=summary[:4000])

    def _tried(self) -> set[str]:
        return {f"{a['type']}:{a['target']['kind']}/{a['target']['name']}" for a in self.status.get("actions") or []
                if a.get("attempt", 0) < self.attempt}

    def _snapshot(self) -> Snapshot:
        """One reading of the namespace, for vetting and preparing actions."""
        return Snapshot.read(self.kube, self.namespace, now())

    def _choose_plan(self, ev: Evidence, tried: set[str]) -> tuple[MitigationPlan, dict]:
        """The model's plan if one is configured and its plan passes every check; else the rules'
        plan, with the reason the model's was not used."""
        rules = planner.plan(ev, tried)
        if self.llm is None:
            return rules, {}
        try:
            p, usage = self.llm.plan(ev, self.namespace, tried)
        except LlmError as exc:
            return rules, {"fallbackReason": str(exc), "usage": exc.usage}
        if not p.actions and rules.actions:
            return rules, {"fallbackReason": "the model proposed no action", "usage": usage}
        try:
            plancheck.vet(p, self._snapshot(), tried)
        except acts.ActionRefused as exc:
            return rules, {"fallbackReason": f"the model's plan was refused: {exc}", "usage": usage}
        return p, {"usage": usage}

    def plan(self) -> None:
        ev = self._evidence()
        p, info = self._choose_plan(ev, self._tried())
        attempt = self.attempt
        plan_doc = p.model_dump(by_alias=True, exclude_none=True) | {"attempt": attempt}
        diagnosis = {"rootCause": p.root_cause[:1024], "confidence": p.confidence, "planner": p.planner,
                     "reasoning": p.expected_effect[:4000]}
        extra: dict = {"plan": plan_doc, "diagnosis": diagnosis}
        if info.get("fallbackReason"):
            diagnosis["fallbackReason"] = info["fallbackReason"][:1000]
            self.emit("Warning", "PlannerFallback", f"rules planner used: {info['fallbackReason']}")
        if info.get("usage"):
            extra["llm"] = add_usage(self.status.get("llm"), info["usage"])
        if not p.actions:
            self.save("Escalated", f"no mitigation left to try: {p.root_cause}", **extra)
            return
        before = self.reader.health(self.spec["service"])
        # One entry per attempt (planning again for the same attempt replaces it).
        validation = [v for v in self.status.get("validation") or [] if v.get("attempt") != attempt]
        validation.append({"attempt": attempt, "at": ts(now()), "before": before.model_dump(by_alias=True,
                                                                                                exclude_none=True)})
        extra["validation"] = validation
        mode = self.spec.get("mode") or self.config.default_mode
        steps = ", ".join(f"{a.type} {a.target.kind.lower()}/{a.target.name}" for a in p.actions)
        if mode == "dry-run":
            self.save("DryRun", f"dry run: would {steps}", **extra)
        elif mode == "approve":
            self.save("AwaitingApproval", f"waiting for annotation {APPROVE_ANNOTATION}=true to {steps}", **extra)
        else:
            self.save("Mitigating", f"attempt {attempt}: {steps}", **extra)

    def await_approval(self) -> None:
        ann = self.inc["metadata"].get("annotations") or {}
        if ann.get(APPROVE_ANNOTATION) == "true":
            self.save("Mitigating", "approved")

    def _plan_actions(self) -> list[Action]:
        return [Action.model_validate(a) for a in (self.status.get("plan") or {}).get("actions") or []]

    def mitigate(self) -> None:
        """Each action is prepared (its patch and undo record computed from the current state),
        recorded `pending` with that intent, applied, then recorded `applied`. Resumed after a
        kill, a `pending` action whose intent already shows on the object is marked applied
        without being applied again; otherwise the recorded intent (not a new one) is applied."""
        attempt = self.attempt
        records = list(self.status.get("actions") or [])
        if not any(r.get("attempt") == attempt for r in records):  # before the attempt's first action
            targets = {f"{a.target.kind}/{a.target.name}" for a in self._plan_actions()}
            decision = limits.check(self.inc, self.kube.list_custom(PLURAL, self.namespace), targets, now(),
                                    self.config.caps)
            if decision.verdict == "wait":
                if self.status.get("message") != decision.message:
                    self.save(message=decision.message)
                return
            if decision.verdict == "escalate":
                self.save("Escalated", decision.message)
                return
        for index, action in enumerate(self._plan_actions()):
            rec = next((r for r in records if r.get("attempt") == attempt and r.get("index") == index), None)
            if rec and rec["outcome"] in ("applied", "failed", "skipped", "undone"):
                continue  # done before a restart: never repeated
            target = {"kind": action.target.kind, "namespace": self.namespace, "name": action.target.name}
            try:
                if rec is None or not rec.get("intent"):
                    prepared = self._prepare(action)
                    rec = rec or {"attempt": attempt, "index": index, "type": action.type, "target": target,
                                  "startedAt": ts(now())}
                    if rec not in records:
                        records.append(rec)
                    rec.update(outcome="pending", message=prepared.summary, undo=prepared.undo,
                               intent=acts.intent_of(prepared))
                    self.save(actions=records)  # recorded before it takes effect
                elif self._took_effect(rec):
                    rec.update(outcome="applied", finishedAt=ts(now()),
                               message=f"{rec.get('message', '')} (had taken effect before a restart)")
                    self.save(actions=records)
                    continue
                self._apply_intent(rec)
                rec.update(outcome="applied", finishedAt=ts(now()))
            except (acts.ActionRefused, ClusterError, ValueError) as exc:
                if rec is None:
                    rec = {"attempt": attempt, "index": index, "type": action.type, "target": target,
                           "startedAt": ts(now())}
                    records.append(rec)
                rec.update(outcome="failed", message=str(exc)[:1000], finishedAt=ts(now()))
                self.save("Undoing", f"action {action.type} failed: {exc}", actions=records)
                return
            self.save(actions=records)
        self.st_clear("validationWindowStart")
        self.save("Validating", f"attempt {attempt} applied; waiting for the rollout, then measuring",
                  mitigatedAt=ts(now()), actions=records)

    def _took_effect(self, rec: dict) -> bool:
        t = rec["target"]
        return acts.took_effect(t["kind"], rec["intent"], self.kube.get(t["kind"], self.namespace, t["name"]))

    def _apply(self, kind: str, namespace: str, name: str, verb: str, patch_type: str | None, body: object) -> None:
        if verb == "delete":
            self.kube.delete(kind, namespace, name)
        elif verb == "create":
            self.kube.create(kind, namespace, body)  # type: ignore[arg-type]
        else:
            self.kube.patch(kind, namespace, name, "json" if patch_type == "json" or isinstance(body, list)
                            else "merge", body)

    def _apply_intent(self, rec: dict) -> None:
        t, intent = rec["target"], rec["intent"]
        self._apply(t["kind"], self.namespace, t["name"], intent["verb"], intent.get("patchType"),
                    body_of(intent))

    def _prepare(self, action: Action) -> acts.Prepared:
        """Vetted and prepared against one reading of the namespace (a config without data gets the
        known-good one; whoever wrote a config, it is checked before it is applied)."""
        return acts.prepare(action, self._snapshot())

    def _rolled_out(self) -> bool:
        """Every Deployment this attempt touched (and the service's own) finished its rollout, with
        no old pod still terminating: only then do the figures describe the mitigated system."""
        names = {a["target"]["name"] for a in self.status.get("actions") or []
                 if a.get("attempt") == self.attempt and a["target"]["kind"] == "Deployment"}
        names.add(self.spec["service"])
        for name in names:
            d = self.kube.get("Deployment", self.namespace, name)
            if d is None:
                continue
            st, want = d.get("status", {}), d["spec"].get("replicas", 1)
            if st.get("observedGeneration", 0) < d["metadata"].get("generation", 0):
                return False
            if not (st.get("updatedReplicas", 0) == st.get("replicas", 0) == st.get("availableReplicas", 0) == want):
                return False
            pods = self.kube.list_pods(self.namespace, f"app.kubernetes.io/name={name}")
            if any(p["metadata"].get("deletionTimestamp") for p in pods):
                return False
        return True

    def validate(self) -> None:
        mitigated = parse(self.status.get("mitigatedAt")) or now()
        start = parse(self.status.get("validationWindowStart"))
        if start is None:
            if self._rolled_out() or (now() - mitigated).total_seconds() > self.config.rollout_timeout_seconds:
                self.save(message=f"rolled out; measuring for {self.config.settle_seconds:.0f}s",
                          validationWindowStart=ts(now()))
            return
        if (now() - start).total_seconds() < self.config.settle_seconds:
            return
        window = f"{max(15, int((now() - start).total_seconds()))}s"
        after = self.reader.health(self.spec["service"], window)
        waited = (now() - start).total_seconds() - self.config.settle_seconds
        if not after.complete and waited < self.config.signal_wait_seconds:
            if not (self.status.get("message") or "").startswith("waiting for complete signals"):
                self.emit("Warning", "SignalsMissing", "Prometheus did not answer or the window holds too few "
                          f"requests; waiting up to {self.config.signal_wait_seconds:.0f}s before judging")
                self.save(message="waiting for complete signals (Prometheus, traffic) before judging")
            return
        validation = list(self.status.get("validation") or [])
        entry = next((v for v in reversed(validation) if v.get("attempt") == self.attempt), None)
        if entry is None:
            entry = {"attempt": self.attempt, "before": {"complete": False}}
            validation.append(entry)
        before = Health.model_validate(entry.get("before") or {"complete": False})
        verdict = judge(before, after, self.config.slo)
        if next_step(verdict, bool(entry.get("extended"))) == "extend":
            entry.update(extended=True, at=ts(now()), after=after.model_dump(by_alias=True, exclude_none=True),
                         message=f"better, not yet within SLO ({verdict.message}): measuring again")
            self.save(message=f"better but not yet within SLO; measuring another {self.config.settle_seconds:.0f}s",
                      validation=validation, validationWindowStart=ts(now()))
            return
        entry.update(at=ts(now()), after=after.model_dump(by_alias=True, exclude_none=True),
                     verdict=verdict.verdict, passed=verdict.passed, message=verdict.message[:1000])
        if verdict.passed:
            detected = parse(self.status.get("detectedAt")) or now()
            self.save("Resolved", f"validated: {verdict.message}", validation=validation, resolvedAt=ts(now()),
                      attempts=self.attempt,
                      timeToMitigate=duration((now() - detected).total_seconds()))
        else:
            self.save("Undoing", f"validation failed ({verdict.verdict}): {verdict.message}", validation=validation)

    def undo(self) -> None:
        attempt = self.attempt
        records = list(self.status.get("actions") or [])
        undo_log = list(self.status.get("undoLog") or [])
        for rec in sorted((r for r in records if r.get("attempt") == attempt and r.get("outcome") == "applied"),
                          key=lambda r: -r["index"]):
            t = rec["target"]
            reverse = acts.undo_of(rec)
            entry = {"attempt": attempt, "action": rec["type"], "target": f"{t['kind']}/{t['name']}", "at": ts(now())}
            if reverse is None:
                entry.update(outcome="skipped", message="nothing to undo")
            else:
                try:
                    self._apply(reverse.kind, t["namespace"], reverse.name, reverse.verb, reverse.patch_type,
                                reverse.body)
                    entry.update(outcome="undone", message="restored from the undo record")
                except ClusterError as exc:
                    entry.update(outcome="failed", message=str(exc)[:1000])
            rec["outcome"] = "undone" if entry["outcome"] == "undone" else rec["outcome"]
            undo_log.append(entry)
            self.save(actions=records, undoLog=undo_log)
        max_attempts = int(self.spec.get("maxAttempts") or 3)
        if attempt >= max_attempts:
            self.save("Escalated", f"{attempt} attempt(s) did not restore the SLOs; a person is needed",
                      attempts=attempt, actions=records, undoLog=undo_log)
        else:
            self.save("Planning", f"attempt {attempt} undone; planning attempt {attempt + 1}", attempts=attempt,
                      actions=records, undoLog=undo_log)
