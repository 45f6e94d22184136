"""The rule-based planner reasons from evidence to actions, and the validation oracle never calls
missing or worse signals a success."""
from __future__ import annotations

from sre_operator.domain.models import ConfigFacts, Evidence, Health, Symptom, WorkloadFacts
from sre_operator.domain.policy import Slo
from sre_operator.incident.validation import judge
from sre_operator.planning import rules as planner


def wl(**kw: object) -> WorkloadFacts:
    base = {"service": "payment", "deployment": "payment", "desired": 1, "ready": 1, "revision": 3,
            "rolloutChanged": True}
    return WorkloadFacts.model_validate({**base, **kw})


def sym(kind: str, service: str = "payment") -> Symptom:
    return Symptom(kind=kind, service=service, signal=f"{kind} of {service}")


def test_a_recent_config_change_is_put_back_and_its_readers_restarted() -> None:
    ev = Evidence(symptoms=[sym("error-rate", "gateway")],
                  workloads=[wl(service="gateway", deployment="gateway", configMaps=["gateway-config"])],
                  configs=[ConfigFacts(name="gateway-config", changedSecondsAgo=40, differsFromKnownGood=True,
                                       knownGoodKey="nginx.conf")])
    p = planner.plan(ev)
    assert [(a.type, a.target.name) for a in p.actions] == [("patch-configmap", "gateway-config"),
                                                            ("rollout-restart", "gateway")]
    assert "ConfigMap gateway-config" in p.root_cause


def test_a_recent_rollout_that_broke_the_service_is_rolled_back() -> None:
    ev = Evidence(symptoms=[sym("unavailable")],
                  workloads=[wl(ready=0, crashLooping=True, previousRevision=2, rolledOutSecondsAgo=60)])
    p = planner.plan(ev)
    assert [(a.type, a.revision) for a in p.actions] == [("rollback", 2)]
    # Tried already: the next plan is different (here: none left that was not tried).
    p2 = planner.plan(ev, tried=planner.action_keys(p))
    assert planner.action_keys(p2) != planner.action_keys(p)


def test_latency_after_a_rollout_rolls_back_and_without_one_scales_out() -> None:
    slow_after_rollout = Evidence(symptoms=[sym("latency", "product")],
                                  workloads=[wl(service="product", deployment="product", previousRevision=4,
                                                rolledOutSecondsAgo=120)])
    assert planner.plan(slow_after_rollout).actions[0].type == "rollback"
    saturated = Evidence(symptoms=[sym("latency", "product")],
                         workloads=[wl(service="product", deployment="product", desired=2, ready=2)])
    assert planner.plan(saturated).actions[0].type == "rollout-restart"  # nothing changed: restart first
    p = planner.plan(saturated, {"rollout-restart:Deployment/product"})
    assert (p.actions[0].type, p.actions[0].replicas) == ("scale", 4)  # doubled


def test_an_old_crash_loop_gets_a_restart_and_no_evidence_gets_no_action() -> None:
    ev = Evidence(symptoms=[sym("crash-loop")], workloads=[wl(ready=0, crashLooping=True, rolledOutSecondsAgo=86400,
                                                              previousRevision=2)])
    assert planner.plan(ev).actions[0].type == "rollout-restart"
    assert planner.plan(Evidence(symptoms=[])).actions == []
    assert planner.plan(Evidence(symptoms=[sym("latency", "ghost")])).actions == []


def test_validation_passes_only_within_slo_and_never_on_missing_data() -> None:
    bad = Health(errorRatio=0.4, p95Seconds=0.2, readyReplicas=0, desiredReplicas=1, scrapeUp=True)
    good = Health(errorRatio=0.0, p95Seconds=0.05, readyReplicas=1, desiredReplicas=1, scrapeUp=True)
    v = judge(bad, good)
    assert (v.verdict, v.passed) == ("better", True)
    assert judge(good, bad).verdict == "worse" and not judge(good, bad).passed
    assert not judge(bad, Health(complete=False)).passed
    slow = Health(errorRatio=0.0, p95Seconds=0.9, readyReplicas=1, desiredReplicas=1)
    still = judge(slow, Health(errorRatio=0.0, p95Seconds=0.85, readyReplicas=1, desiredReplicas=1))
    assert (still.verdict, still.passed) == ("same", False) and "P95" in still.message
    assert judge(slow, good, Slo(max_p95_seconds=1.0)).passed
    # Noise inside the objective is not a regression.
    fast = Health(errorRatio=0.0, p95Seconds=0.009, readyReplicas=1, desiredReplicas=1)
    assert judge(fast, Health(errorRatio=0.0, p95Seconds=0.021, readyReplicas=1, desiredReplicas=1)).passed


def test_a_service_scaled_to_zero_is_scaled_back_to_its_healthy_count() -> None:
    ev = Evidence(symptoms=[sym("unavailable")], workloads=[wl(desired=0, ready=0, knownGoodReplicas=2)])
    p = planner.plan(ev)
    assert [(a.type, a.replicas) for a in p.actions] == [("scale", 2)]
    ev = Evidence(symptoms=[sym("unavailable")], workloads=[wl(desired=0, ready=0)])
    assert [(a.type, a.replicas) for a in planner.plan(ev).actions] == [("scale", 1)]


def test_a_rollout_whose_new_pods_never_get_ready_is_rolled_back() -> None:
    ev = Evidence(symptoms=[sym("not-ready")], workloads=[wl(ready=1, previousRevision=3, revision=4,
                                                              rolledOutSecondsAgo=70)])
    assert [(a.type, a.revision) for a in planner.plan(ev).actions] == [("rollback", 3)]


def test_better_but_not_yet_within_slo_is_measured_once_more_then_undone() -> None:
    from sre_operator.incident.validation import next_step
    before = Health(errorRatio=0.58, p95Seconds=3.1, readyReplicas=1, desiredReplicas=1, requestRate=1)
    recovering = Health(errorRatio=0.0, p95Seconds=3.5, readyReplicas=1, desiredReplicas=1, requestRate=1)
    v = judge(before, recovering)
    assert v.verdict == "better" and not v.passed
    assert next_step(v, extended=False) == "extend"
    assert next_step(v, extended=True) == "undo"
    assert next_step(judge(before, Health(errorRatio=0.0, p95Seconds=0.03, readyReplicas=1, desiredReplicas=1,
                                          requestRate=1)), extended=False) == "resolve"
    assert next_step(judge(before, Health(errorRatio=0.9, p95Seconds=3.1, readyReplicas=1, desiredReplicas=1,
                                          requestRate=1)), extended=False) == "undo"


def test_a_window_with_too_few_requests_is_not_evidence() -> None:
    from sre_operator.detection.signals import MIN_REQUESTS, parse_window
    assert parse_window("1m") == 60 and parse_window("41s") == 41
    # Two orders in 25 s (the callers stopped sending): incomplete, so never judged healthy.
    assert 0.08 * parse_window("25s") < MIN_REQUESTS
    assert judge(Health(p95Seconds=1.0, requestRate=1), Health(requestRate=0.08, complete=False)).passed is False
