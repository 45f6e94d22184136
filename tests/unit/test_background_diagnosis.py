"""The hybrid planner's triage when a rule matches: the rules' plan acts at once and the model's
diagnosis is asked in the background from the triage-time evidence, then recorded whenever it comes
(any phase, a finished Incident too), checked as triage checks it. The pipeline and the runner run
for real against the in-memory cluster; the model is a scripted port that answers only when the
test lets it (a small model on a CPU takes a minute)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sre_operator.adapters.spans import OtlpSpans
from sre_operator.domain.models import Diagnosis, Evidence, MitigationPlan
from sre_operator.domain.telemetry import NoTelemetry
from sre_operator.domain.vocabulary import ModelStage, PlannerPolicy
from sre_operator.handlers import incidents as handlers
from sre_operator.incident import pipeline
from sre_operator.incident.model_slot import ModelSlot
from sre_operator.incident.step import Event
from sre_operator.planning import selection
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_crds import CRDS
from tests.unit.test_model_agents import found, restart
from tests.unit.test_pipeline import (
    HEALTHY,
    Figures,
    Model,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
    unknown_fields,
)


class Gated(Model):
    """The model's port whose diagnosis answers only once `release` is set; keeps the evidence it
    was asked from."""

    def __init__(self, answer: MitigationPlan | None = None, diagnosis: Diagnosis | None = None) -> None:
        super().__init__(answer, "no plan scripted", diagnosis)
        self.release, self.asked_at = threading.Event(), threading.Event()
        self.evidence: Evidence | None = None

    def diagnose(self, ev: Evidence, namespace: str) -> tuple[Diagnosis, dict[str, Any]]:
        self.evidence = ev
        self.asked_at.set()
        self.release.wait(30)
        return super().diagnose(ev, namespace)


@pytest.fixture
def gated() -> Iterator[Gated]:
    model = Gated(restart("product"), diagnosis=found())
    yield model
    model.release.set()  # never a thread left waiting after the test


class Calls(NoTelemetry):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, int, bool]] = []

    def llm_call(self, model: str, calls: int, prompt_tokens: int, completion_tokens: int, fallback: bool) -> None:
        self.calls.append((model, calls, prompt_tokens, completion_tokens, fallback))


STATUS_SCHEMA = yaml.safe_load((CRDS / "incidents.sre.stratus.dev.yaml").read_text())[
    "spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def test_the_rule_acts_at_once_and_the_model_s_diagnosis_is_recorded_when_it_comes(
        cluster: MemoryCluster, gated: Gated) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    telemetry, exporter = Calls(), InMemorySpanExporter()
    spans = OtlpSpans(exporter=exporter)
    p = ports(cluster, Figures(product=dict(HEALTHY)), llm=gated, telemetry=telemetry, spans=spans)
    st = run(cluster, p, settings(llm_model="small"), until={"Validating"})
    # The model has not answered: the rules' plan is applied meanwhile, and status says it is awaited.
    assert gated.asked_at.wait(5) and not gated.release.is_set()
    assert st["phase"] == "Validating" and [(a["type"], a["outcome"]) for a in st["actions"]] == [("scale", "applied")]
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "rules" and d["planner"] == "rules" and d["pendingSince"] == st["timeline"][1]["at"]
    assert "diagnosis is asked in the background" in st["timeline"][1]["message"] and "llm" not in st
    jsonschema.validate(st, STATUS_SCHEMA)
    assert unknown_fields(st, STATUS_SCHEMA) == []  # the API server keeps pendingSince
    # It was asked from the evidence of triage: the fault, not the state after the fix.
    assert gated.evidence is not None
    assert next(w for w in gated.evidence.workloads if w.service == "product").ready == 0
    assert telemetry.calls == []

    gated.release.set()
    st = run(cluster, p, settings(llm_model="small"))
    assert st["phase"] == "Resolved"
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "llm" and d["summary"] == "product has no replica" and d["rootCause"] == "scaled to zero"
    assert d["evidence"] == ["0/0 ready"] and d["confidence"] == 0.8 and "pendingSince" not in d
    assert d["planner"] == "rules" and st["plan"]["planner"] == "rules"  # the plan's side stays
    llm = st["llm"]
    assert llm["calls"] == 1 and llm["promptTokens"] == 50 and llm["completionTokens"] == 5
    assert len(llm["callSeconds"]) == 1 and "fallbacks" not in llm
    assert telemetry.calls == [("m", 1, 50, 5, False)]
    assert spans.flush()
    [call] = [s for s in exporter.get_finished_spans() if s.name == "chat small"]
    assert call.attributes["sre.model.stage"] == "triage" and call.attributes["gen_ai.usage.input_tokens"] == 50


def test_an_answer_that_comes_after_the_incident_resolved_is_recorded(cluster: MemoryCluster, gated: Gated) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)), llm=gated)
    st = run(cluster, p, settings(), until={"Resolved"})
    assert st["phase"] == "Resolved" and st["diagnosis"]["pendingSince"] and st["diagnosis"]["diagnosedBy"] == "rules"
    assert handlers.runs(st, SimpleNamespace())  # kopf keeps (or starts again) the daemon of a finished one
    gated.release.set()
    st = run(cluster, p, settings())
    assert st["phase"] == "Resolved" and st["diagnosis"]["diagnosedBy"] == "llm" and st["llm"]["calls"] == 1
    assert "pendingSince" not in st["diagnosis"] and not handlers.runs(st, SimpleNamespace())


def test_the_daemon_of_a_finished_incident_waits_for_the_answer_then_ends(cluster: MemoryCluster,
                                                                          gated: Gated) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")  # finished at once
    threading.Timer(0.3, gated.release.set).start()
    start = cluster.clock()
    st = run(cluster, ports(cluster, Figures(), llm=gated), settings(), limit=50)
    # It finished before the answer came (the rules' diagnosis awaited the model's) ...
    [left_triage] = [w[3] for w in cluster.writes if w[0] == "patch_status" and w[3].get("phase") == "Planning"]
    assert left_triage["diagnosis"]["pendingSince"] and left_triage["diagnosis"]["diagnosedBy"] == "rules"
    # ... and its daemon waited for the answer, recorded it and ended (well before its 50 pauses).
    assert st["phase"] == "DryRun" and st["diagnosis"]["diagnosedBy"] == "llm" and st["llm"]["calls"] == 1
    assert "pendingSince" not in st["diagnosis"] and (cluster.clock() - start).total_seconds() < 10


def test_a_finished_incident_waits_for_the_answer_no_longer_than_one_question_takes(
        cluster: MemoryCluster, gated: Gated) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    events: list[Event] = []
    st = run(cluster, ports(cluster, Figures(), events, llm=gated),
             settings(llm_timeout_seconds=0.2, llm_max_retries=1), limit=50)
    d = st["diagnosis"]
    assert st["phase"] == "DryRun" and d["diagnosedBy"] == "rules" and "pendingSince" not in d
    [reason] = st["llm"]["reasons"]
    assert reason["stage"] == "triage" and reason["reason"] == ("the model's diagnosis did not come within 0.4s of "
                                                                "the incident's end")
    assert any(e.reason == "PlannerFallback" for e in events)


def test_a_late_diagnosis_that_suspects_an_object_the_evidence_does_not_name_is_refused(
        cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    model = Gated(restart("product"), diagnosis=found(name="warehouse"))
    events: list[Event] = []
    telemetry = Calls()
    p = ports(cluster, Figures(product=dict(HEALTHY)), events, llm=model, telemetry=telemetry)
    try:
        assert run(cluster, p, settings(), until={"Validating"})["diagnosis"]["pendingSince"]
        model.release.set()
        st = run(cluster, p, settings())
    finally:
        model.release.set()
    assert st["phase"] == "Resolved" and "pendingSince" not in st["diagnosis"]
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "rules" and d["suspect"] == {"kind": "Deployment", "name": "product"}
    [reason] = st["llm"]["reasons"]
    assert reason["stage"] == "triage" and "deployment/warehouse, which the evidence does not name" in reason["reason"]
    assert st["llm"]["calls"] == 1 and st["llm"]["fallbacks"] == 1
    said = [e.message for e in events if e.reason == "PlannerFallback"]
    assert said == [f"the rules' diagnosis is used: {reason['reason']}"]
    assert telemetry.calls == [("m", 1, 50, 5, True)]


def test_a_question_lost_with_the_operator_that_asked_it_leaves_the_rules_diagnosis(cluster: MemoryCluster,
                                                                                    gated: Gated) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    assert run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), llm=gated), settings(),
               until={"Validating"})["diagnosis"]["pendingSince"]
    # A new operator process: its own background questions, none of them this Incident's.
    again = Model(restart("product"), diagnosis=found())
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), llm=again), settings())
    assert st["phase"] == "Resolved" and again.diagnosed == 0
    assert st["diagnosis"]["diagnosedBy"] == "rules" and "pendingSince" not in st["diagnosis"]
    [reason] = st["llm"]["reasons"]
    assert reason["stage"] == "triage" and reason["reason"] == pipeline.NOT_RECEIVED


def test_a_background_question_takes_its_turn_for_the_one_model_slot(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    slot = ModelSlot()
    assert slot.turn("another incident", 0.0) is None  # another incident is asking
    model = Model(restart("product"), diagnosis=found())
    p = ports(cluster, Figures(product=dict(HEALTHY)), llm=model, model_slot=slot)
    try:
        st = run(cluster, p, settings(), until={"Validating"})
        assert st["phase"] == "Validating" and model.diagnosed == 0 and st["diagnosis"]["pendingSince"]
    finally:
        slot.release()
    st = run(cluster, p, settings())
    assert st["phase"] == "Resolved" and model.diagnosed == 1 and st["diagnosis"]["diagnosedBy"] == "llm"
    assert slot.turn("another incident", 0.0) is None  # given back


@pytest.mark.parametrize(("policy", "rule_matches", "background"), [
    ("hybrid", True, True),  # the rules act at once; the model diagnoses meanwhile
    ("hybrid", False, False),  # the model's diagnosis comes before its plan
    ("llm", True, False),
])
def test_only_hybrid_with_a_matching_rule_asks_in_the_background(cluster: MemoryCluster, policy: str,
                                                                 rule_matches: bool, background: bool) -> None:
    matching = restart("product") if rule_matches else MitigationPlan(rootCause="none", confidence=0.1, actions=[])
    budget = selection.Budget(20000, 0)
    ask = selection.decide(ModelStage.TRIAGE, PlannerPolicy(policy), configured=True, triage=True, budget=budget,
                           rules_plan=matching)
    assert ask.ask and ask.background == background
    if rule_matches:
        scale_to_zero(cluster)
        incident(cluster, mode="dry-run")
        figures = Figures()
    else:  # borne out by the signals, nothing changed since healthy: no rule
        incident(cluster, service="gateway", symptom="route-missing", mode="dry-run")
        figures = Figures(gateway={**HEALTHY, "unrouted_ratio": 0.9, "unrouted_route": "/api/things"})
    model = Model(restart("gateway"), diagnosis=found("Deployment", "gateway" if not rule_matches else "product"))
    st = run(cluster, ports(cluster, figures, llm=model), settings(planner=policy))
    assert st["phase"] == "DryRun" and st["diagnosis"]["diagnosedBy"] == "llm"
    [left_triage] = [w[3] for w in cluster.writes if w[0] == "patch_status" and w[3].get("phase") == "Planning"]
    if background:
        assert left_triage["diagnosis"]["diagnosedBy"] == "rules" and left_triage["diagnosis"]["pendingSince"]
    else:  # triage waited for the model's answer
        assert left_triage["diagnosis"]["diagnosedBy"] == "llm" and "pendingSince" not in left_triage["diagnosis"]
