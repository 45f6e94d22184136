"""The model inside the agents, in the unit tier: when it is asked (the hybrid policy, the Incident
that tightens it, the token budget), what triage makes of its diagnosis, and how every realistic
wrong answer or failure falls back to the rules with the reason in status, never a stuck Incident.

The pipeline runs for real against the in-memory cluster; the model is either a scripted port
(`Model` of test_pipeline) or the real `openai` client against the scripted server (`FakeLlm`)."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from sre_operator.adapters.llm_client import chat_client
from sre_operator.domain.models import (
    Action,
    ConfigFacts,
    Diagnosis,
    Evidence,
    MitigationPlan,
    Symptom,
    Target,
    TraceFacts,
    WorkloadFacts,
)
from sre_operator.domain.policy import LlmConfig
from sre_operator.domain.vocabulary import ModelStage, PlannerPolicy
from sre_operator.incident import model_slot, pipeline, runner
from sre_operator.incident.model_slot import ModelSlot
from sre_operator.incident.step import Event
from sre_operator.planning import prompt, selection
from sre_operator.planning.llm import LlmPlanner
from tests.fake_llm import FakeLlm, Reply, diagnosis_reply, plan_reply, task_of
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    FAILING,
    HEALTHY,
    NS,
    Figures,
    Model,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
)


def restart(name: str) -> MitigationPlan:
    return MitigationPlan(rootCause="a process gone bad", confidence=0.6, planner="llm", actions=[
        Action(type="rollout-restart", target=Target(kind="Deployment", name=name))])


def found(kind: str = "Deployment", name: str = "product") -> Diagnosis:
    return Diagnosis(summary="product has no replica", root_cause="scaled to zero", confidence=0.8,
                     suspect=Target(kind=kind, name=name), evidence=["0/0 ready"], diagnosed_by="llm")


# -- the hybrid policy ----------------------------------------------------------------------------------

def test_hybrid_a_rule_that_matches_acts_and_the_model_is_not_asked_for_a_plan(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    model = Model(restart("product"), diagnosis=found())
    st = run(cluster, ports(cluster, Figures(), llm=model), settings())
    assert st["phase"] == "DryRun" and st["plan"]["planner"] == "rules" and st["plan"]["actions"][0]["type"] == "scale"
    assert model.asked == 0 and model.diagnosed == 1
    assert "fallbackReason" not in st["diagnosis"] and "fallbacks" not in st["llm"]


def test_hybrid_with_no_rule_that_matches_the_model_plans(cluster: MemoryCluster) -> None:
    # Borne out by the signals (a symptom alone is a claim), nothing changed since healthy: no rule.
    incident(cluster, service="gateway", symptom="route-missing", mode="dry-run")
    unrouted = Figures(gateway={**HEALTHY, "unrouted_ratio": 0.9, "unrouted_route": "/api/things"})
    model = Model(restart("gateway"))
    st = run(cluster, ports(cluster, unrouted, llm=model), settings(llm_triage=False))
    assert model.asked == 1 and st["phase"] == "DryRun"
    assert st["plan"]["planner"] == "llm" and st["diagnosis"]["planner"] == "llm"
    assert st["plan"]["actions"][0]["target"]["name"] == "gateway"


def test_hybrid_after_a_rule_s_plan_was_undone_the_model_plans_the_next_attempt(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    model = Model(restart("product"))
    st = run(cluster, ports(cluster, Figures(product=dict(FAILING)), llm=model), settings(llm_triage=False))
    assert st["phase"] == "Escalated" and st["attempts"] == 2
    assert model.asked == 1  # attempt 1: the rule scaled; attempt 2: the model
    assert [(a["attempt"], a["type"]) for a in st["actions"]] == [(1, "scale"), (2, "rollout-restart")]
    assert st["plan"]["attempt"] == 2 and st["plan"]["planner"] == "llm"


def test_the_rules_policy_never_asks_the_model(cluster: MemoryCluster) -> None:
    incident(cluster, service="order", symptom="latency")
    model = Model(restart("order"), diagnosis=found("Deployment", "order"))
    st = run(cluster, ports(cluster, Figures(), llm=model), settings(planner="rules"))
    assert st["phase"] == "Escalated" and model.asked == model.diagnosed == 0
    assert "llm" not in st and st["diagnosis"]["diagnosedBy"] == "rules"


@pytest.mark.parametrize(("operator", "incident_asks", "asked"), [
    ("hybrid", "rules", 0),  # an Incident may keep its data from the model
    ("rules", "llm", 0),  # but may not send it to a model the operator was told not to use
    ("rules", "hybrid", 0),
    ("llm", "hybrid", 0),  # a rule matches: hybrid acts on it
    ("llm", None, 1),
])
def test_an_incident_may_tighten_the_policy_never_loosen_it(cluster: MemoryCluster, operator: str,
                                                            incident_asks: str | None, asked: int) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run", **({"planner": incident_asks} if incident_asks else {}))
    model = Model(restart("product"), diagnosis=found())
    run(cluster, ports(cluster, Figures(), llm=model), settings(planner=operator))
    assert model.asked == asked


def test_the_policy_order_is_strictest_first() -> None:
    assert selection.effective_policy("llm", "rules") == PlannerPolicy.RULES
    assert selection.effective_policy("rules", "llm") == PlannerPolicy.RULES
    assert selection.effective_policy("hybrid", None) == PlannerPolicy.HYBRID
    assert selection.effective_policy("hybrid", "llm") == PlannerPolicy.HYBRID


def test_a_spent_token_budget_means_no_call_and_the_rules_with_the_reason(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    model = Model(restart("product"), diagnosis=found())
    events: list[Event] = []
    st = run(cluster, ports(cluster, Figures(), events, llm=model), settings(planner="llm", llm_token_budget=50))
    assert model.diagnosed == 1 and model.asked == 0  # triage spent 55 tokens of 50
    assert st["plan"]["planner"] == "rules" and "token budget is spent (55 of 50)" in st["diagnosis"]["fallbackReason"]
    assert st["llm"]["reasons"][-1]["stage"] == "planning" and st["llm"]["fallbacks"] == 1
    assert any(e.reason == "PlannerFallback" for e in events)


def test_no_model_under_the_llm_policy_is_a_stated_fallback(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    st = run(cluster, ports(cluster, Figures()), settings(planner="llm"))
    assert st["phase"] == "DryRun" and st["diagnosis"]["fallbackReason"] == "no model is configured"
    assert [r["stage"] for r in st["llm"]["reasons"]] == ["triage", "planning"]


# -- triage ---------------------------------------------------------------------------------------------

def test_triage_stores_the_model_s_diagnosis(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    st = run(cluster, ports(cluster, Figures(), llm=Model(None, "x", diagnosis=found())), settings())
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "llm" and d["summary"] == "product has no replica"
    assert d["suspect"] == {"kind": "Deployment", "name": "product"} and d["rootCause"] == "scaled to zero"
    assert st["llm"]["calls"] == 1 and st["llm"]["promptTokens"] == 50


def test_without_a_model_the_rules_diagnose_from_the_evidence(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    st = run(cluster, ports(cluster, Figures()), settings())
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "rules" and d["suspect"] == {"kind": "Deployment", "name": "product"}
    assert "scaled to 0" in d["rootCause"] and d["evidence"] and d["summary"].startswith("product: unavailable")
    assert "llm" not in st


def test_a_diagnosis_that_suspects_an_object_the_evidence_does_not_name_is_refused(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    st = run(cluster, ports(cluster, Figures(), llm=Model(None, "x", diagnosis=found(name="warehouse"))), settings())
    assert st["diagnosis"]["diagnosedBy"] == "rules" and st["diagnosis"]["suspect"]["name"] == "product"
    [reason] = st["llm"]["reasons"]
    assert reason["stage"] == "triage" and "deployment/warehouse, which the evidence does not name" in reason["reason"]


def test_a_diagnosis_that_repeats_a_fact_shows_it_once(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    said = "product's replicas were set to 0"
    repeating = found().model_copy(update={"evidence": [said, said + " ", "0/0 ready", said, ""]})
    st = run(cluster, ports(cluster, Figures(), llm=Model(None, "x", diagnosis=repeating)), settings(planner="llm"))
    assert st["diagnosis"]["diagnosedBy"] == "llm" and st["diagnosis"]["evidence"] == [said, "0/0 ready"]


class Broken(Model):
    """A model port that raises what a broken client raises (an old `openai` without `parse`)."""

    def plan(self, ev: Evidence, namespace: str, tried: set[str]) -> tuple[MitigationPlan, dict[str, Any]]:
        self.asked += 1
        raise AttributeError("'Completions' object has no attribute 'parse'")

    def diagnose(self, ev: Evidence, namespace: str) -> tuple[Diagnosis, dict[str, Any]]:
        self.diagnosed += 1
        raise ValueError("the answer is not JSON")


def test_any_exception_from_the_model_falls_back_and_the_incident_moves_on(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    model = Broken(None)
    st = run(cluster, ports(cluster, Figures(), llm=model), settings(planner="llm"), limit=20)
    assert st["phase"] == "DryRun" and model.asked == model.diagnosed == 1
    assert st["diagnosis"]["diagnosedBy"] == "rules" and st["plan"]["planner"] == "rules"
    assert [r["reason"].split(":")[1].strip() for r in st["llm"]["reasons"]] == ["ValueError", "AttributeError"]
    assert st["llm"]["calls"] == 2


def test_a_check_that_breaks_on_a_model_plan_refuses_it(cluster: MemoryCluster,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    vet = pipeline.plancheck.vet

    def broken(plan: MitigationPlan, *args: Any) -> None:
        if plan.planner == "llm":
            raise KeyError("spec")
        vet(plan, *args)  # the rules' plan is vetted too (before any action), and passes
    monkeypatch.setattr(pipeline.plancheck, "vet", broken)
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    st = run(cluster, ports(cluster, Figures(), llm=Model(restart("product"))), settings(planner="llm"))
    assert st["phase"] == "DryRun" and st["plan"]["planner"] == "rules"
    assert "refused: KeyError" in st["diagnosis"]["fallbackReason"]


# -- realistic wrong answers, through the real client ----------------------------------------------------

def llm_port(fake: FakeLlm, timeout: float = 5.0, retries: int = 0) -> LlmPlanner:
    config = LlmConfig(base_url=fake.base_url, api_key=SecretStr("k"), model="small", timeout_seconds=timeout,
                       max_retries=retries)
    return LlmPlanner(config, chat_client(config))


SCALE = {"type": "scale", "target": {"kind": "Deployment", "name": "product"}, "replicas": 2}


@pytest.mark.parametrize(("bad", "reason"), [
    (Reply('{"summary": "restart it", "actions": [{"type": "scale"'), "does not follow its schema"),  # cut-off JSON
    (Reply("Sure! Here is the plan: scale product to 2."), "does not follow its schema"),  # prose, not JSON
    (plan_reply([{**SCALE, "target": {"kind": "Deployment", "name": "product-service"}}]),
     "input_value='product-service'"),  # a hallucinated name: the schema names the evidence's objects only
    (plan_reply([{"type": "delete-namespace", "target": {"kind": "Deployment", "name": "product"}}]),
     "does not follow its schema"),  # outside the allowlist
    (plan_reply([{**SCALE, "target": {"kind": "ConfigMap", "name": "gateway-config"}}]), "scale acts on Deployment"),
    (plan_reply([{**SCALE, "target": {"kind": "Deployment", "name": "product", "namespace": "kube-system"}}]),
     "outside the incident's"),  # another namespace
    (plan_reply([]), "the model proposed no action"),  # an empty plan
    (Reply(status=503), "server failed"),
])
def test_a_wrong_answer_is_refused_with_its_reason_and_the_rules_plan(cluster: MemoryCluster, bad: Reply,
                                                                      reason: str) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    answers = {"diagnose": diagnosis_reply("Deployment", "product"), "plan": bad}
    with FakeLlm(lambda req: answers[task_of(req)]).running() as fake:
        st = run(cluster, ports(cluster, Figures(), llm=llm_port(fake)), settings(planner="llm"), limit=20)
    assert st["phase"] == "DryRun" and st["plan"]["planner"] == "rules"
    assert st["plan"]["actions"][0]["type"] == "scale" and st["plan"]["actions"][0]["replicas"] == 1
    assert reason in st["diagnosis"]["fallbackReason"]
    assert st["diagnosis"]["diagnosedBy"] == "llm" and st["llm"]["model"] == "small"
    assert st["llm"]["reasons"][-1]["stage"] == "planning" and st["llm"]["fallbacks"] == 1


def test_a_model_that_times_out_is_tried_once_more_then_the_rules_plan(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    slow = Reply(plan_reply([SCALE]).content, delay=2)
    with FakeLlm(lambda req: slow if task_of(req) == "plan" else diagnosis_reply("Deployment", "product")
                 ).running() as fake:
        st = run(cluster, ports(cluster, Figures(), llm=llm_port(fake, timeout=0.3, retries=1)),
                 settings(planner="llm"), limit=20)
    plans = [r for r in fake.requests if task_of(r["body"]) == "plan"]
    assert len(plans) == 2  # one retry
    assert st["phase"] == "DryRun" and st["plan"]["planner"] == "rules"
    why = st["diagnosis"]["fallbackReason"]
    assert "did not answer within" in why and "2 tries" in why
    assert st["llm"]["calls"] == 3  # the diagnosis, then the plan twice


def test_a_hallucinated_suspect_from_the_real_client_is_refused(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    with FakeLlm(lambda req: diagnosis_reply("Deployment", "inventory-db")).running() as fake:
        st = run(cluster, ports(cluster, Figures(), llm=llm_port(fake)), settings(), limit=20)
    assert st["diagnosis"]["diagnosedBy"] == "rules" and "inventory-db" in st["llm"]["reasons"][0]["reason"]
    assert len(fake.requests) == 1  # a rule matched: no plan asked


def test_the_model_s_diagnosis_text_is_cleaned_and_capped(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    said = [f"{i}" + "y" * 900 for i in range(9)]
    long = diagnosis_reply("Deployment", "product", summary="\x1b[31m" + "x" * 5000, evidence=[said[0]] * 4 + said)
    with FakeLlm(lambda req: long).running() as fake:
        st = run(cluster, ports(cluster, Figures(), llm=llm_port(fake)), settings(), limit=20)
    d = st["diagnosis"]
    assert d["diagnosedBy"] == "llm" and len(d["summary"]) == 1024 and "\x1b" not in d["summary"]
    assert len(d["evidence"]) == 5 and {len(x) for x in d["evidence"]} == {300}
    assert [x[0] for x in d["evidence"]] == ["0", "1", "2", "3", "4"]  # a repeated fact once, not five times


# -- prompts ----------------------------------------------------------------------------------------------

def evidence(service: str, kind: str, **more: Any) -> Evidence:
    return Evidence(symptoms=[Symptom(kind=kind, service=service, signal="s")],
                    workloads=[WorkloadFacts(service=s, deployment=s) for s in ("gateway", "order", "product",
                                                                                "payment")],
                    traces=[TraceFacts(traceId=f"t{i}", root="order: GET", durationMs=900.0) for i in range(5)],
                    logLines=[f"payment-1/app: line {i} " + "z" * 400 for i in range(50)], **more)


def test_the_fixed_instructions_come_first_and_are_the_same_bytes_for_every_incident_and_task() -> None:
    a = prompt.messages(ModelStage.TRIAGE, evidence("payment", "unavailable"), "shop")
    b = prompt.messages(ModelStage.PLANNING, evidence("order", "latency"), "other", {"scale:Deployment/order"})
    assert a[0] == b[0] and a[0]["role"] == "system" and "rollout-restart" in a[0]["content"]
    # Within one incident, the plan's question repeats the diagnosis's up to the task at the end.
    c = prompt.messages(ModelStage.PLANNING, evidence("payment", "unavailable"), "shop", {"scale:Deployment/payment"})
    head = a[1]["content"].removesuffix('Task: "diagnose".')
    assert c[1]["content"].startswith(head) and c[1]["content"].endswith('Task: "plan".')
    assert "Tried and undone: scale:Deployment/payment." in c[1]["content"]


def test_the_evidence_is_trimmed_to_what_the_symptom_needs() -> None:
    down = prompt.trimmed(evidence("payment", "unavailable"))
    assert [w["service"] for w in down["workloads"]] == ["payment"]  # off its path: gone
    assert "traces" not in down  # traces do not explain an outage
    assert len(down["logLines"]) == prompt.LOG_LINES and {len(x) for x in down["logLines"]} == {prompt.LOG_CHARS}
    slow = prompt.trimmed(evidence("order", "latency"))
    assert [w["service"] for w in slow["workloads"]] == ["order", "product", "payment"]
    assert len(slow["traces"]) == prompt.TRACES


def test_a_changed_config_is_shown_as_its_diff_from_known_good_not_as_two_whole_copies() -> None:
    good = "\n".join(f"    location /api/r{i} {{ proxy_pass http://r{i}:8000; }}" for i in range(60))
    now = good.replace("http://r7:8000", "http://r7:5999")
    changed = ConfigFacts(name="gateway-config", differsFromKnownGood=True, knownGoodKey="nginx.conf", value=now,
                          knownGoodValue=good)
    mounted = WorkloadFacts(service="gateway", deployment="gateway", configMaps=["gateway-config"])
    ev = Evidence(symptoms=[Symptom(kind="error-rate", service="gateway", signal="s")], workloads=[mounted],
                  configs=[changed])
    doc = prompt.trimmed(ev)
    [config] = doc["configs"]
    assert "value" not in config and "knownGoodValue" not in config and config["differsFromKnownGood"]
    assert config["changeFromKnownGood"] == [
        "@@ -7,3 +7,3 @@", "     location /api/r6 { proxy_pass http://r6:8000; }",
        "-    location /api/r7 { proxy_pass http://r7:8000; }", "+    location /api/r7 { proxy_pass http://r7:5999; }",
        "     location /api/r8 { proxy_pass http://r8:8000; }"]
    assert len(prompt.evidence_document(ev, "shop")) < len(good) / 4
    # A config rewritten whole: its diff is cut, and says how much was left out.
    rewritten = changed.model_copy(update={"value": good.replace("proxy_pass", "return 502; #")})
    lines = prompt.config_change(rewritten.model_dump(by_alias=True, exclude_none=True))["changeFromKnownGood"]
    assert len(lines) == prompt.DIFF_LINES + 1 and lines[-1].endswith("more diff lines")


def test_log_lines_of_one_event_repeated_are_shown_once_with_their_count() -> None:
    access = ('{{"time":"2026-11-26T17:32:0{s}+00:00","uri":"/api/orders","status":{code},"request_time":0.00{s},'
              '"request_id":"{s}9797b12263ba431e9edcee696375ae2"}}')
    lines = [access.format(s=s, code=502) for s in range(5)] + [access.format(s=5, code=504)] + \
        [f'INFO:     10.244.0.7:4123{s} - "GET /api/products HTTP/1.1" 200 OK' for s in range(3)] + \
        [access.format(s=6, code=502)]
    assert prompt.collapsed(lines) == [access.format(s=5, code=504),
                                       'INFO:     10.244.0.7:41232 - "GET /api/products HTTP/1.1" 200 OK [x3]',
                                       access.format(s=6, code=502) + " [x6]"]
    # What tells events apart stays: a server's port, an error number, a version.
    apart = ["connect to 10.0.0.1:5432 refused", "connect to 10.0.0.1:6379 refused", '{"errno":1062}',
             '{"errno":1213}', "image payment:1.4", "image payment:1.5"]
    assert prompt.collapsed(apart) == apart


def test_the_triage_prompt_is_shorter_than_the_whole_evidence() -> None:
    import json
    ev = evidence("payment", "unavailable")
    whole = json.dumps(ev.model_dump(by_alias=True))
    assert len(prompt.evidence_document(ev, "shop")) < len(whole) / 2


def test_an_unreadable_status_with_a_model_configured_fails_the_incident_rather_than_loop(
        cluster: MemoryCluster) -> None:
    incident(cluster)
    cluster.patch_status("Incident", NS, "inc", {"phase": "Planning", "attempts": 1, "actions": [{"attempt": 1}]})
    st = run(cluster, ports(cluster, Figures(), llm=Model(restart("product"))), settings(planner="llm"), limit=5)
    assert st["phase"] == "Failed" and "KeyError" in st["message"]


def test_incidents_take_turns_for_the_model_and_say_they_wait(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    slot = ModelSlot()
    assert slot.turn("another incident", 0.0) is None  # another incident is asking
    model = Model(restart("product"), diagnosis=found())
    # planner llm: triage waits for the model's diagnosis (hybrid with a rule would ask in the background)
    p = ports(cluster, Figures(), llm=model, model_slot=slot)
    st = run(cluster, p, settings(planner="llm"), limit=5)
    assert st["phase"] == "Triaging" and st["message"] == runner.WAITING_FOR_THE_MODEL and model.diagnosed == 0
    said = [w[3] for w in cluster.writes if w[0] == "patch_status"]
    assert said.count({"message": runner.WAITING_FOR_THE_MODEL}) == 1  # said once, not at every tick
    assert len(slot.waiting()) == 1  # in line
    slot.release()  # the other incident's answer came
    st = run(cluster, p, settings(planner="llm"), limit=20)
    assert st["phase"] == "DryRun" and st["diagnosis"]["diagnosedBy"] == "llm" and model.diagnosed == 1
    assert slot.turn("another incident", 0.0) is None  # given back
    slot.release()


def test_an_incident_waiting_for_the_model_holds_no_thread(cluster: MemoryCluster) -> None:
    """Waiting for the slot ends the tick (the shared workers go on to other Incidents), however
    long a question may take."""
    from concurrent.futures import ThreadPoolExecutor
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    slot = ModelSlot()
    slot.turn("another incident", 0.0)  # held, never given back
    p = ports(cluster, Figures(), llm=Model(restart("product"), diagnosis=found()), model_slot=slot)
    with ThreadPoolExecutor(1) as pool:
        ticked = pool.submit(runner.tick, p, NS, "inc", settings(planner="llm", llm_timeout_seconds=300))
        ticked.result(timeout=30)  # a tick that waited for the slot would take 20 minutes
        ticked = pool.submit(runner.tick, p, NS, "inc", settings(planner="llm", llm_timeout_seconds=300))
        done = ticked.result(timeout=30)
    assert done is not None and done.phase == "Triaging" and not done.again


def test_an_incident_that_no_longer_asks_leaves_the_line_at_once(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    slot = ModelSlot()
    assert slot.turn("holder", 0.0) is None
    p = ports(cluster, Figures(), llm=Model(restart("product"), diagnosis=found()), model_slot=slot)
    runner.tick(p, NS, "inc", settings(planner="llm"))  # Detected → Triaging
    runner.tick(p, NS, "inc", settings(planner="llm"))  # triage asks: in line
    assert len(slot.waiting()) == 1
    runner.tick(p, NS, "inc", settings(planner="rules"))  # told to use the rules now: asks nothing
    assert slot.waiting() == []


def test_turns_for_the_model_are_first_come_first_served_and_the_gone_leave_the_line() -> None:
    slot = ModelSlot()
    assert slot.turn("a", 0.0) is None
    assert slot.turn("b", 1.0) == 0.0 and slot.turn("c", 2.0) == 0.0
    slot.release()
    assert slot.turn("c", 3.0) == 1.0  # b came first
    assert slot.turn("b", 4.0) is None
    slot.release()
    assert slot.still_waiting("c", 5.0) is None  # its turn may have come: it reads and asks
    assert slot.turn("c", 5.0) is None
    slot.release()
    assert slot.turn("d", 10.0) is None and slot.turn("gone", 11.0) == 0.0 and slot.turn("e", 12.0) == 0.0
    slot.release()
    assert slot.still_waiting("e", 13.0) == 1.0  # "gone" is ahead
    assert slot.turn("e", 12.0 + model_slot.FORGET_SECONDS + 2) is None  # "gone" stopped asking: left the line
    slot.release()


def test_a_background_question_does_not_take_the_slot_from_an_incident_ahead_of_it_between_its_ticks() -> None:
    import threading
    import time
    slot = ModelSlot()
    assert slot.turn("holder", 0.0) is None
    assert slot.turn("incident A", 0.0) == 0.0  # first in line, between two ticks
    took: list[bool] = []
    background = threading.Thread(target=lambda: took.append(slot.acquire("B/background", 10, lambda: 1.0)))
    background.start()
    wait_until = time.monotonic() + 5
    while slot.waiting() != ["incident A", "B/background"] and time.monotonic() < wait_until:
        time.sleep(0.01)
    slot.release()  # the holder's answer came
    time.sleep(0.3)
    assert slot.held_by() is None and not took  # kept for A, which asks again at its next tick
    assert slot.turn("incident A", 1.0) is None
    slot.release()
    background.join(5)
    assert took == [True] and slot.held_by() == "B/background"
    slot.release()
    # A background question that waited too long leaves the line, and says so.
    assert slot.turn("holder", 2.0) is None
    assert slot.acquire("C/background", 0.05, lambda: 2.0) is False and slot.waiting() == []
    slot.release()


def test_a_slot_held_too_long_is_a_fallback_not_a_wait_forever(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    slot = ModelSlot()
    slot.turn("another incident", 0.0)  # never given back
    model = Model(restart("product"), diagnosis=found())
    st = run(cluster, ports(cluster, Figures(), llm=model, model_slot=slot),
             settings(planner="llm", llm_timeout_seconds=0.1, llm_max_retries=0), limit=20)
    assert st["phase"] == "DryRun" and model.diagnosed == 0 and st["diagnosis"]["diagnosedBy"] == "rules"
    assert "the model stayed busy for 0s with another incident" in st["llm"]["reasons"][0]["reason"]
