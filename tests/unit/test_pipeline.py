"""The Incident pipeline in the unit tier: the real stages and the real runner against the in-memory
cluster (`tests/fakes/cluster.py`), a metrics reading handed in as plain figures, and the fake's
clock. Each test drives an Incident through the daemon loop itself (`runner.run_incident`) or one
tick at a time (`runner.tick`); nothing here repeats what the runner does."""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from sre_operator.domain.clock import parse
from sre_operator.domain.metrics import WINDOW, MetricsReading
from sre_operator.domain.models import Action, Diagnosis, Evidence, MitigationPlan, Target
from sre_operator.domain.ports import ClusterError, Obj, PatchType
from sre_operator.domain.snapshot import ACTION_LEDGER, KNOWN_GOOD
from sre_operator.incident import pipeline, runner
from sre_operator.incident.model_slot import ModelSlot
from sre_operator.incident.step import Event
from sre_operator.planning.llm import LlmError
from sre_operator.settings import Settings
from tests.fakes.cluster import MemoryCluster, shop

NS = "shop"
HEALTHY = {"rate": 5.0, "error_ratio": 0.0, "p95": 0.05, "up": 1.0}
FAILING = {**HEALTHY, "error_ratio": 0.5}


class Figures:
    """The metrics port with figures set by the test (`down`: the source does not answer)."""

    def __init__(self, **services: dict[str, float]) -> None:
        self.services = {"gateway": dict(HEALTHY), **services}
        self.down = False
        self.windows: list[str] = []

    def read(self, namespaces: Sequence[str], window: str) -> MetricsReading:
        self.windows.append(window)
        if self.down:
            return MetricsReading(window, {}, "Prometheus at http://nowhere: refused")
        return MetricsReading(window, {ns: copy.deepcopy(self.services) for ns in namespaces})


class Clock:
    """kopf's `DaemonStopped` for the daemon loop: each pause moves the fake's clock on and lets
    its controllers act; stops after `limit` pauses or when `until` holds."""

    def __init__(self, cluster: MemoryCluster, limit: int = 200, until: Any = None) -> None:
        self.cluster, self.limit, self.until, self.pauses = cluster, limit, until, 0

    def __bool__(self) -> bool:
        return self.pauses >= self.limit or bool(self.until and self.until())

    def wait(self, timeout: float) -> bool:
        self.pauses += 1
        self.cluster.tick(timeout)
        self.cluster.controllers()
        return bool(self)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"watch_namespaces": NS, "settle_seconds": 30, "signal_wait_seconds": 20,
                            "rollout_timeout_seconds": 120}
    return Settings(**{**base, **overrides})


def ports(cluster: Any, metrics: Any, events: list[Event] | None = None, **more: Any) -> runner.Ports:
    sink = events if events is not None else []
    more.setdefault("model_slot", ModelSlot())  # each test its own line for the model (not the process's)
    return runner.Ports(cluster=cluster, metrics=metrics, emit=sink.append, clock=cluster.clock, **more)


def incident(cluster: MemoryCluster, name: str = "inc", **spec: Any) -> str:
    cluster.create("Incident", NS, {"apiVersion": "sre.stratus.dev/v1alpha1", "kind": "Incident",
                                    "metadata": {"name": name},
                                    "spec": {"service": "product", "symptom": "unavailable", "source": "kubernetes",
                                             "maxAttempts": 2, **spec}})
    return name


def status(cluster: MemoryCluster, name: str = "inc") -> dict[str, Any]:
    inc = cluster.get("Incident", NS, name)
    assert inc is not None
    return dict(inc.get("status") or {})


def scale_to_zero(cluster: MemoryCluster, name: str = "product", known_good: int | None = 1) -> None:
    if known_good is not None:
        cluster.create("ConfigMap", NS, {"metadata": {"name": KNOWN_GOOD},
                                         "data": {f"_replicas.{name}": str(known_good)}})
    cluster.patch("Deployment", NS, name, "merge", {"spec": {"replicas": 0}})
    cluster.controllers()
    cluster.tick(60)


def run(cluster: MemoryCluster, p: runner.Ports, s: Settings, name: str = "inc", limit: int = 200,
        until: set[str] | None = None) -> dict[str, Any]:
    stop = Clock(cluster, limit, (lambda: status(cluster, name).get("phase") in until) if until else None)
    runner.run_incident(p, NS, name, s, stop)
    return status(cluster, name)


def seconds_between(st: dict[str, Any], a: str, b: str) -> float:
    at = {t["phase"]: parse(t["at"]) for t in st["timeline"]}
    return (at[b] - at[a]).total_seconds()


def deployment_patches(cluster: MemoryCluster, name: str) -> list[object]:
    return [body for verb, kind, n, body in cluster.writes if verb == "patch" and kind == "Deployment" and n == name]


# -- whole runs ------------------------------------------------------------------------------------------

def test_a_fix_whose_new_pods_crash_loop_is_undone_at_once_not_after_the_rollout_timeout(
        cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    cluster.crashing.add("product")  # the pods the fix makes will crash
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings(rollout_timeout_seconds=120),
             until={"Undoing", "Escalated", "Resolved"})
    [v] = st["validation"]
    assert v["verdict"] == "worse" and not v["passed"] and "product's new pods are crash-looping" in v["message"]
    assert seconds_between(st, "Validating", "Undoing") < 10  # not the 120 s rollout timeout


def test_a_workload_scaled_to_zero_is_scaled_back_validated_and_resolved(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    events: list[Event] = []
    metrics = Figures(product=dict(HEALTHY))
    st = run(cluster, ports(cluster, metrics, events), settings())
    assert st["phase"] == "Resolved", st.get("message")
    assert [t["phase"] for t in st["timeline"]] == ["Triaging", "Planning", "Mitigating", "Validating", "Resolved"]
    assert [(a["type"], a["outcome"]) for a in st["actions"]] == [("scale", "applied")]
    assert st["actions"][0]["undo"] == {"replicas": 0}
    assert deployment_patches(cluster, "product")[-1] == {"spec": {"replicas": 2}}
    assert st["attempts"] == 1 and st["timeToMitigate"].endswith("s") and st["resolvedAt"]
    [v] = st["validation"]
    assert v["passed"] and v["verdict"] == "better" and v["before"]["readyReplicas"] == 0
    assert v["after"]["readyReplicas"] == 2
    assert metrics.windows[:2] == [WINDOW, WINDOW]  # triage and planning read the detector's window
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Resolved"]["status"] == "True" and conds["Mitigated"]["status"] == "True"
    assert conds["Valid"]["status"] == "True" and conds["Escalated"]["status"] == "False"
    assert all(c["observedGeneration"] == 1 for c in conds.values())
    assert [e.reason for e in events] == ["Triaging", "Planning", "Mitigating", "Validating", "Resolved"]
    assert st["triageSummary"].startswith("gateway: 1/1 ready")
    assert st["symptoms"][0]["kind"] == "unavailable" and st["symptoms"][0]["observedAt"]


def test_validation_measures_from_its_own_start_and_every_other_phase_over_the_detector_s_window() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    validating = {"phase": "Validating", "validationWindowStart": start.isoformat()}
    assert pipeline.window_for(validating, start + dt.timedelta(seconds=41)) == "41s"
    assert pipeline.window_for(validating, start + dt.timedelta(seconds=3)) == "15s"  # never fewer than 15 scrapes
    assert pipeline.window_for({"phase": "Triaging"}, start + dt.timedelta(seconds=41)) == WINDOW
    assert pipeline.window_for({"phase": "Validating"}, start) == WINDOW  # no start on record: not a window of its own


def test_attempts_that_do_not_help_are_undone_then_escalated(cluster: MemoryCluster) -> None:
    """Figures that stay outside the SLO: each attempt is undone (the scale goes back to 0), the next
    one planned without repeating it, and after maxAttempts a person is called."""
    scale_to_zero(cluster)
    incident(cluster)
    events: list[Event] = []
    st = run(cluster, ports(cluster, Figures(product=dict(FAILING)), events), settings())
    assert st["phase"] == "Escalated" and st["attempts"] == 2 and "a person is needed" in st["message"]
    phases = [t["phase"] for t in st["timeline"]]
    assert phases == ["Triaging", "Planning", "Mitigating", "Validating", "Undoing", "Planning", "Mitigating",
                      "Validating", "Undoing", "Escalated"]
    assert [(a["attempt"], a["type"], a["outcome"]) for a in st["actions"]] == [
        (1, "scale", "undone"), (2, "rollout-restart", "applied")]
    assert [(u["attempt"], u["action"], u["outcome"]) for u in st["undoLog"]] == [
        (1, "scale", "undone"), (2, "rollout-restart", "skipped")]
    assert [v["passed"] for v in st["validation"]] == [False, False]
    assert "outside SLO" in st["validation"][0]["message"] and st["validation"][1]["verdict"] in ("same", "worse")
    dep = cluster.get("Deployment", NS, "product")
    assert dep is not None and dep["spec"]["replicas"] == 0  # the scale was undone
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"Resolved": "False", "Mitigated": "False", "AwaitingApproval": "False", "Escalated": "True",
                     "Valid": "True"}


def approve(cluster: MemoryCluster, value: str, name: str = "inc", key: str = pipeline.APPROVE_ANNOTATION) -> None:
    cluster.patch("Incident", NS, name, "merge", {"metadata": {"annotations": {
        key: value, pipeline.APPROVED_BY_ANNOTATION: "alice"}}})


def test_an_approval_names_its_attempt_and_a_rejection_calls_a_person(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve")
    p, s = ports(cluster, Figures(product=dict(HEALTHY))), settings()
    run(cluster, p, s, until={"AwaitingApproval"})
    for stale in ("true", "attempt-2", "yes"):  # an old-style or another attempt's approval approves nothing
        approve(cluster, stale)
        assert run(cluster, p, s, limit=5)["phase"] == "AwaitingApproval"
    approve(cluster, "attempt-1", key=pipeline.REJECT_ANNOTATION)
    st = run(cluster, p, s)
    assert st["phase"] == "Escalated" and "attempt 1 rejected by alice" in st["message"] and not st.get("actions")


@pytest.mark.parametrize(("operator_mode", "incident_mode", "phase"), [
    ("approve", "auto", "AwaitingApproval"),  # an Incident cannot loosen the operator's mode
    ("dry-run", "auto", "DryRun"),
    ("auto", "dry-run", "DryRun"),  # but may tighten it
    ("auto", "approve", "AwaitingApproval"),
])
def test_an_incident_may_only_tighten_the_mode(cluster: MemoryCluster, operator_mode: str, incident_mode: str,
                                               phase: str) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode=incident_mode)
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings(mode=operator_mode), limit=20)
    assert st["phase"] == phase and not st.get("actions")


def test_approve_waits_for_the_annotation_then_acts(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve")
    p, s = ports(cluster, Figures(product=dict(HEALTHY))), settings()
    st = run(cluster, p, s, limit=10)
    assert st["phase"] == "AwaitingApproval" and "sre.stratus.dev/approve=attempt-1" in st["message"]
    assert not st.get("actions") and deployment_patches(cluster, "product") == [{"spec": {"replicas": 0}}]
    assert {c["type"]: c["status"] for c in st["conditions"]}["AwaitingApproval"] == "True"
    approve(cluster, "attempt-1")
    st = run(cluster, p, s, until={"Validating"})
    assert st["phase"] == "Validating" and [a["outcome"] for a in st["actions"]] == ["applied"]
    assert any(t["message"] == "attempt 1 approved by alice" for t in st["timeline"])
    assert {c["type"]: c["status"] for c in st["conditions"]}["AwaitingApproval"] == "False"
    assert run(cluster, p, s)["phase"] == "Resolved"


def test_dry_run_plans_and_touches_nothing(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    before = len(cluster.writes)
    st = run(cluster, ports(cluster, Figures()), settings())
    assert st["phase"] == "DryRun" and st["message"] == "dry run: would scale deployment/product"
    assert {verb for verb, kind, *_ in cluster.writes[before:]} == {"patch_status"}
    assert not st.get("actions") and st["plan"]["actions"][0]["replicas"] == 1


def test_the_operator_default_mode_applies_when_the_incident_names_none(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    assert run(cluster, ports(cluster, Figures()), settings(mode="dry-run"))["phase"] == "DryRun"


@pytest.mark.parametrize(("spec", "reason", "text"), [
    ({"service": "warehouse"}, "UnknownService", "'warehouse' is not a workload"),
    ({"symptom": "melted"}, "InvalidIncident", "ValidationError"),
    ({"maxAttempts": "many"}, "InvalidIncident", "ValidationError"),
])
def test_an_incident_that_cannot_be_handled_fails_with_a_condition(cluster: MemoryCluster, spec: dict[str, Any],
                                                                   reason: str, text: str) -> None:
    incident(cluster, **spec)
    before = len(cluster.writes)
    st = run(cluster, ports(cluster, Figures()), settings())
    assert st["phase"] == "Failed"
    [cond] = [c for c in st["conditions"] if c["type"] == "Valid"]
    assert cond["status"] == "False" and cond["reason"] == reason and text in cond["message"]
    assert {verb for verb, *_ in cluster.writes[before:]} == {"patch_status"}


def test_an_incident_outside_the_watched_namespaces_is_refused(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    st = run(cluster, ports(cluster, Figures()), settings(watch_namespaces="elsewhere,other"))
    [cond] = [c for c in st["conditions"] if c["type"] == "Valid"]
    assert st["phase"] == "Failed" and cond["reason"] == "NamespaceNotWatched" and "elsewhere, other" in cond["message"]
    assert not st.get("plan") and deployment_patches(cluster, "product") == [{"spec": {"replicas": 0}}]


def test_an_unknown_phase_fails_and_a_finished_incident_is_left_alone(cluster: MemoryCluster) -> None:
    incident(cluster)
    cluster.patch_status("Incident", NS, "inc", {"phase": "Dancing"})
    assert run(cluster, ports(cluster, Figures()), settings())["phase"] == "Failed"
    before = len(cluster.writes)
    assert runner.tick(ports(cluster, Figures()), NS, "inc", settings()) == runner.Ticked("Failed")
    assert len(cluster.writes) == before
    assert runner.tick(ports(cluster, Figures()), NS, "gone", settings()) is None


# -- time to detect ---------------------------------------------------------------------------------------

def test_time_to_detect_runs_from_the_symptoms_onset_to_the_incident(cluster: MemoryCluster) -> None:
    """A breach that needs several readings (a 5xx ratio) opens its Incident on the last of them; its
    time to detect runs from the first breaching reading."""
    from sre_operator.detection.detector import Detector
    from sre_operator.detection.loop import detect_once
    from sre_operator.domain.policy import Thresholds

    det, s = Detector(Thresholds(for_cycles=3)), settings()
    remembered: list[str] = []
    failing = Figures(order=dict(HEALTHY), product=dict(HEALTHY), payment=dict(FAILING))
    for _ in range(3):
        opened = detect_once(cluster, NS, det, s, failing.read([NS], "1m"), cluster.clock(),
                             lambda snap: remembered.append(snap.namespace))
        cluster.tick(5)
    [name] = opened
    inc = cluster.get("Incident", NS, name)
    assert inc is not None and inc["spec"]["detectedAt"] == "2026-01-01T12:00:00Z"  # the first breaching reading
    assert inc["spec"]["dedupKey"] == "payment/error-rate"
    runner.tick(ports(cluster, failing), NS, name, s)
    st = status(cluster, name)
    assert st["timeToDetect"] == "10.0s" and st["detectedAt"] == "2026-01-01T12:00:10Z"
    assert remembered == []  # never while something is broken
    # Healthy, with no incident open: its objects are recorded as known-good.
    cluster.patch_status("Incident", NS, name, {"phase": "Resolved"})
    cluster.tick(120)
    detect_once(cluster, NS, det, s, Figures(order=dict(HEALTHY), product=dict(HEALTHY), payment=dict(HEALTHY)).read(
        [NS], "1m"), cluster.clock(), lambda snap: remembered.append(snap.namespace))
    assert remembered == [NS]


def test_a_workload_scaled_to_zero_is_an_incident_at_the_first_reading(cluster: MemoryCluster) -> None:
    from sre_operator.detection.detector import Detector
    from sre_operator.detection.loop import detect_once
    from sre_operator.domain.policy import Thresholds

    scale_to_zero(cluster)
    [name] = detect_once(cluster, NS, Detector(Thresholds(for_cycles=3)), settings(), Figures().read([NS], "1m"),
                         cluster.clock(), lambda snap: None)
    inc = cluster.get("Incident", NS, name)
    assert inc is not None and inc["spec"]["severity"] == "critical"
    assert inc["spec"]["dedupKey"] == "product/unavailable"


# -- kill anywhere ------------------------------------------------------------------------------------

class Killed(BaseException):
    """The operator's process dies (not an error the daemon handles)."""


class DiesAfter:
    """The cluster as the operator sees it until the process dies: right after its `n`th write."""

    def __init__(self, cluster: MemoryCluster, n: int) -> None:
        self.cluster, self.n = cluster, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)

    def _wrote(self) -> None:
        self.n -= 1
        if self.n == 0:
            raise Killed()

    def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
        self.cluster.patch(kind, namespace, name, patch_type, body)
        self._wrote()

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> None:
        self.cluster.patch_status(kind, namespace, name, status)
        self._wrote()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.cluster.delete(kind, namespace, name)
        self._wrote()


def killed_runs() -> Iterator[int]:
    yield from range(1, 40)


@pytest.mark.parametrize("plan", ["scale", "config"])
def test_killed_after_any_write_the_next_operator_finishes_without_repeating_an_action(plan: str) -> None:
    """The operator dies right after its 1st, 2nd, … write; a new one takes over from what was
    persisted. Every run ends Resolved with each action applied exactly once."""
    total = None
    for n in killed_runs():
        cluster = shop(MemoryCluster())
        if plan == "scale":
            scale_to_zero(cluster)
        else:
            break_gateway_config(cluster)
        incident(cluster, service="product" if plan == "scale" else "gateway",
                 symptom="unavailable" if plan == "scale" else "error-rate")
        s = settings()
        metrics = Figures(product=dict(HEALTHY))
        start = len(cluster.writes)
        try:
            run(cluster, ports(DiesAfter(cluster, n), metrics), s)
        except Killed:
            pass
        else:
            total = n
        st = run(cluster, ports(cluster, metrics), s)
        assert st["phase"] == "Resolved", (n, st.get("message"))
        assert all(a["outcome"] == "applied" for a in st["actions"])
        object_writes = [(v, k, name, b) for v, k, name, b in cluster.writes[start:]
                         if v in ("patch", "delete") and name != ACTION_LEDGER]  # the ledger is no action
        expected = [("patch", "Deployment", "product", {"spec": {"replicas": 1}})] if plan == "scale" else [
            ("patch", "ConfigMap", "gateway-config"), ("patch", "Deployment", "gateway")]
        assert [w[:len(e)] for w, e in zip(object_writes, expected, strict=False)] == expected and \
            len(object_writes) == len(expected), (n, object_writes)
        if total is not None:
            break
    assert total is not None and total > 8  # the run was killed at each of its writes before this one


def break_gateway_config(cluster: MemoryCluster) -> None:
    cm = cluster.get("ConfigMap", NS, "gateway-config")
    assert cm is not None
    good = "events {}\nhttp {\n" + cm["data"]["nginx.conf"] + "}\n"  # as `nginx -t` takes it
    cluster.patch("ConfigMap", NS, "gateway-config", "merge", {"data": {"nginx.conf": good}})
    cluster.create("ConfigMap", NS, {"metadata": {"name": KNOWN_GOOD}, "data": {"gateway-config.nginx.conf": good}})
    cluster.tick(30)
    cluster.patch("ConfigMap", NS, "gateway-config", "merge",
                  {"data": {"nginx.conf": good.replace("server product:5002", "server product:5999")}})
    cluster.tick(30)


def test_a_pending_action_that_already_took_effect_is_marked_applied_not_repeated(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    p, s = ports(cluster, Figures(product=dict(HEALTHY))), settings()
    while not status(cluster).get("actions"):
        runner.tick(p, NS, "inc", s)
    [rec] = status(cluster)["actions"]
    assert rec["outcome"] == "pending" and rec["intent"] == {"action": "scale", "verb": "patch", "patchType": "merge",
                                                             "body": {"spec": {"replicas": 1}}}
    cluster.patch("Deployment", NS, "product", "merge", rec["intent"]["body"])  # applied, then the process died
    runner.tick(p, NS, "inc", s)
    [rec] = status(cluster)["actions"]
    assert rec["outcome"] == "applied" and "had taken effect before a restart" in rec["message"]
    assert len(deployment_patches(cluster, "product")) == 2  # the test's two, none of the operator's


# -- API errors --------------------------------------------------------------------------------------------

def test_a_transient_error_while_applying_is_retried_and_the_action_applied_once(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    p, s = ports(cluster, Figures(product=dict(HEALTHY))), settings()
    while not status(cluster).get("actions"):
        runner.tick(p, NS, "inc", s)

    class FailsOnPatch(DiesAfter):
        def patch(self, kind: str, namespace: str, name: str, patch_type: PatchType, body: object) -> None:
            if kind == "Deployment":
                raise ClusterError(503, "unavailable")
            self.cluster.patch(kind, namespace, name, patch_type, body)

    stop = Clock(cluster, limit=3)
    runner.run_incident(ports(FailsOnPatch(cluster, 0), Figures()), NS, "inc", s, stop)
    st = status(cluster)
    assert st["actions"][0]["outcome"] == "pending" and st["message"].startswith("retrying in")
    assert stop.cluster.now > dt.datetime(2026, 1, 1, 12, 1, 10, tzinfo=dt.UTC)  # backed off
    st = run(cluster, p, s)
    assert st["phase"] == "Resolved" and len(deployment_patches(cluster, "product")) == 2


def test_an_action_the_api_server_refuses_fails_the_attempt_which_is_undone(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, maxAttempts=1)
    p, s = ports(cluster, Figures(product=dict(HEALTHY))), settings()
    while not status(cluster).get("actions"):
        runner.tick(p, NS, "inc", s)
    cluster.fail_next(1, 0)  # the Incident's read
    with pytest.raises(ClusterError):
        runner.tick(p, NS, "inc", s)
    cluster.refuse_patches("Deployment", 422, "spec.replicas: Invalid value")
    st = run(cluster, p, s, until={"Undoing", "Escalated"})
    assert [(a["outcome"], a["message"]) for a in st["actions"]] == [("failed", "422 spec.replicas: Invalid value")]
    assert "action scale failed" in st["timeline"][-1]["message"] or st["phase"] == "Escalated"
    st = run(cluster, p, s)
    assert st["phase"] == "Escalated" and not st.get("undoLog")


def test_an_action_that_cannot_be_prepared_fails_the_attempt(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve", maxAttempts=1)
    p, s = ports(cluster, Figures()), settings()
    run(cluster, p, s, until={"AwaitingApproval"})
    cluster.delete("Deployment", NS, "product")  # gone between the plan and the approval
    approve(cluster, "attempt-1")
    st = run(cluster, p, s)
    assert st["phase"] == "Escalated" and [t["phase"] for t in st["timeline"]][-3:] == [
        "Mitigating", "Undoing", "Escalated"]
    assert st["actions"][0]["outcome"] == "failed"
    assert "is not an object of this application" in st["actions"][0]["message"]


def test_with_the_metrics_source_down_validation_holds_and_undoes_nothing(cluster: MemoryCluster) -> None:
    """Missing data is never health and never failure: the fix stays, nothing is judged, and it is
    said once."""
    scale_to_zero(cluster)
    incident(cluster)
    metrics = Figures(product=dict(HEALTHY))
    events: list[Event] = []
    p, s = ports(cluster, metrics, events), settings()
    run(cluster, p, s, until={"Validating"})
    metrics.down = True
    st = run(cluster, p, s, limit=40)
    assert st["phase"] == "Validating" and st["message"].startswith("waiting for the metrics source")
    assert not st.get("undoLog") and [e.reason for e in events].count("SignalsMissing") == 1
    assert (cluster.get("Deployment", NS, "product") or {})["spec"]["replicas"] == 1  # the fix stays
    metrics.down = False
    assert run(cluster, p, s)["phase"] == "Resolved"


def test_too_little_traffic_is_not_failure(cluster: MemoryCluster) -> None:
    """A structural symptom is judged by the service's own state when the window holds too few
    requests; a slow service with too little traffic keeps measuring, then goes to a person without
    its fix being undone."""
    scale_to_zero(cluster)
    incident(cluster)
    quiet = Figures(product={**HEALTHY, "rate": 0.01})
    st = run(cluster, ports(cluster, quiet), settings())
    assert st["phase"] == "Resolved" and "own state is healthy again" in st["message"]
    incident(cluster, "slow", service="product", symptom="latency")
    p = ports(cluster, Figures(product={**HEALTHY, "p95": 0.9}))
    s = settings()
    run(cluster, p, s, "slow", until={"Validating"})
    p.metrics.services["product"] = {**HEALTHY, "rate": 0.01}  # type: ignore[attr-defined]
    st = run(cluster, p, s, "slow", limit=400)
    assert st["phase"] == "Escalated" and "too little traffic" in st["message"] and not st.get("undoLog")


def test_undo_that_the_api_server_refuses_is_logged_and_the_incident_escalated(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, maxAttempts=1)
    p, s = ports(cluster, Figures(product=dict(FAILING))), settings()
    run(cluster, p, s, until={"Undoing"})
    cluster.delete("Deployment", NS, "product")  # gone: nothing to restore into
    st = run(cluster, p, s)
    assert st["phase"] == "Escalated"
    assert [(u["action"], u["outcome"]) for u in st["undoLog"]] == [("scale", "failed")]
    assert "not found" in st["undoLog"][0]["message"] and st["actions"][0]["outcome"] == "applied"


# -- the planner ---------------------------------------------------------------------------------------

class Model:
    """The model's port: a fixed plan (or an error) with the tokens it cost; a fixed diagnosis (or
    an error). Counts the questions of each stage."""

    def __init__(self, answer: MitigationPlan | None, error: str = "", diagnosis: Diagnosis | None = None) -> None:
        self.answer, self.error, self.diagnosis = answer, error, diagnosis
        self.asked = self.diagnosed = 0

    def plan(self, ev: Evidence, namespace: str, tried: set[str]) -> tuple[MitigationPlan, dict[str, Any]]:
        self.asked += 1
        usage = {"model": "m", "calls": 1, "promptTokens": 100, "completionTokens": 10}
        if self.answer is None:
            raise LlmError(self.error, usage)
        return self.answer, usage

    def diagnose(self, ev: Evidence, namespace: str) -> tuple[Diagnosis, dict[str, Any]]:
        self.diagnosed += 1
        usage = {"model": "m", "calls": 1, "promptTokens": 50, "completionTokens": 5}
        if self.diagnosis is None:
            raise LlmError("no diagnosis scripted", usage)
        return self.diagnosis, usage


def scale(name: str, replicas: int, namespace: str | None = None) -> MitigationPlan:
    return MitigationPlan(rootCause="too few", confidence=0.9, planner="llm", actions=[
        Action(type="scale", target=Target(kind="Deployment", name=name, namespace=namespace), replicas=replicas)])


@pytest.mark.parametrize(("answer", "reason"), [
    (Model(None, "the model did not answer within 1s"), "did not answer within"),
    (Model(scale("coredns", 0, "kube-system")), "outside the incident's"),
    (Model(scale("warehouse", 2)), "is not an object of this application"),
    (Model(MitigationPlan(rootCause="none", confidence=0.1, actions=[])), "proposed no action"),
])
def test_a_bad_or_absent_model_plan_falls_back_to_the_rules(cluster: MemoryCluster, answer: Model,
                                                            reason: str) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    events: list[Event] = []
    st = run(cluster, ports(cluster, Figures(), events, llm=answer), settings(planner="llm", llm_triage=False))
    assert st["phase"] == "DryRun" and st["diagnosis"]["planner"] == "rules"
    assert reason in st["diagnosis"]["fallbackReason"]
    llm = st["llm"]
    assert (llm["model"], llm["calls"], llm["promptTokens"], llm["completionTokens"]) == ("m", 1, 100, 10)
    assert llm["fallbacks"] == 1 and llm["reasons"][0]["stage"] == "planning" and reason in llm["reasons"][0]["reason"]
    assert len(llm["callSeconds"]) == 1
    assert any(e.reason == "PlannerFallback" and e.type == "Warning" for e in events)


def test_a_good_model_plan_is_used(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="dry-run")
    model = Model(scale("product", 3))
    st = run(cluster, ports(cluster, Figures(), llm=model), settings(planner="llm"))
    assert st["diagnosis"]["planner"] == "llm" and "fallbackReason" not in st["diagnosis"]
    assert st["plan"]["actions"][0]["replicas"] == 3 and model.asked == 1


def test_with_nothing_left_to_try_the_incident_is_escalated(cluster: MemoryCluster) -> None:
    incident(cluster, service="order", symptom="latency")  # healthy, nothing changed: no rule matches
    st = run(cluster, ports(cluster, Figures()), settings())
    assert st["phase"] == "Escalated" and st["message"].startswith("no mitigation left to try")


# -- limits ---------------------------------------------------------------------------------------------

def test_an_incident_waits_while_another_acts_on_the_same_workload(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, "first")
    incident(cluster, "second")
    # product still fails while the first acts: the second's symptom is borne out, and it plans a restart.
    p, s = ports(cluster, Figures(product={**HEALTHY, "error_ratio": 0.5})), settings()
    run(cluster, p, s, "first", until={"Validating"})
    st = run(cluster, p, s, "second", limit=6)
    assert st["phase"] == "Mitigating" and st["message"] == "waiting: incident first is acting on Deployment/product"
    assert not st.get("actions")


def test_too_many_actions_on_one_workload_within_an_hour_escalate(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    recent = [{"attempt": 1, "index": 0, "type": "scale", "target": {"kind": "Deployment", "name": "product"},
               "outcome": "undone", "startedAt": cluster.stamp()}] * 6
    incident(cluster, "old")
    cluster.patch_status("Incident", NS, "old", {"phase": "Escalated", "actions": recent})
    st = run(cluster, ports(cluster, Figures()), settings())
    assert st["phase"] == "Escalated" and "would be flapping" in st["message"]


# -- pure pieces -------------------------------------------------------------------------------------------

def test_the_validation_slo_follows_the_p95_threshold() -> None:
    s = settings(p95_threshold_seconds=1.5, slo_error_ratio=0.02)
    assert s.slo().max_p95_seconds == 1.5 == s.thresholds().p95_seconds and s.slo().max_error_ratio == 0.02
    assert s.acts_in(NS) and not s.acts_in("other") and settings(watch_namespaces="").acts_in("anywhere")


# -- conditions and the CRD ----------------------------------------------------------------------------------

def test_conditions_follow_the_phase_and_keep_their_transition_time() -> None:
    from sre_operator.domain.vocabulary import Phase
    from sre_operator.incident.conditions import conditions
    t0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    first = conditions(Phase.TRIAGING, 1, t0)
    assert {c["type"]: c["status"] for c in first} == {"Resolved": "False", "Mitigated": "False",
                                                       "AwaitingApproval": "False", "Escalated": "False",
                                                       "Valid": "True"}
    later = conditions(Phase.VALIDATING, 2, t0 + dt.timedelta(minutes=1), first, message="applied")
    by = {c["type"]: c for c in later}
    assert by["Mitigated"] == {"type": "Mitigated", "status": "True", "reason": "Validating", "message": "applied",
                               "lastTransitionTime": "2026-01-01T12:01:00Z", "observedGeneration": 2}
    assert by["Resolved"]["lastTransitionTime"] == "2026-01-01T12:00:00Z" and by["Resolved"]["observedGeneration"] == 2
    failed = {c["type"]: c for c in conditions(Phase.FAILED, 2, t0, later, "UnknownService", "no such workload")}
    assert failed["Valid"]["status"] == "False" and failed["Valid"]["reason"] == "UnknownService"
    assert failed["Mitigated"]["status"] == "False" and failed["Mitigated"]["reason"] == "UnknownService"


def unknown_fields(doc: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    """Fields of `doc` its structural schema does not declare (the API server would prune them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(doc, dict):
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            return [] if extra else [path]
        return [f"{path}.{k}" for k in doc if k not in props] + [
            x for k, v in doc.items() if k in props for x in unknown_fields(v, props[k], f"{path}.{k}")]
    if isinstance(doc, list):
        return [x for i, v in enumerate(doc) for x in unknown_fields(v, schema.get("items") or {}, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("case", ["resolved", "escalated", "failed"])
def test_what_the_pipeline_writes_is_what_the_crd_declares(cluster: MemoryCluster, case: str) -> None:
    import jsonschema
    import yaml

    from tests.unit.test_crds import CRDS
    schema = yaml.safe_load((CRDS / "incidents.sre.stratus.dev.yaml").read_text())[
        "spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    scale_to_zero(cluster)
    incident(cluster, **({"service": "warehouse"} if case == "failed" else {}))
    metrics = Figures(product=dict(FAILING if case == "escalated" else HEALTHY))
    st = run(cluster, ports(cluster, metrics, llm=Model(None, "no model")), settings(max_attempts=1))
    assert st["phase"] == case.capitalize()
    jsonschema.validate(st, schema)
    assert unknown_fields(st, schema) == []


class Cycles:
    """A stop event for the detector loop: lets `n` cycles run, moving the fake's clock on."""

    def __init__(self, cluster: MemoryCluster, n: int) -> None:
        self.cluster, self.n = cluster, n

    def wait(self, timeout: float | None = None) -> bool:
        self.n -= 1
        self.cluster.tick(5)
        return self.n < 0

    def is_set(self) -> bool:
        return self.n < 0


class Pauses(Cycles):
    """As `Cycles`, recording how long the loop meant to pause before each cycle."""

    def __init__(self, cluster: MemoryCluster, n: int) -> None:
        super().__init__(cluster, n)
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(round(timeout or 0.0))
        return super().wait(timeout)


def test_a_breach_seen_once_is_read_again_soon_to_confirm_it(cluster: MemoryCluster) -> None:
    from sre_operator.detection.loop import detector_loop
    cluster.tick(60)  # every pod old enough for its figures to be in
    # Healthy: a whole interval between readings.
    quiet = Pauses(cluster, 2)
    detector_loop(quiet, cluster, Figures(), settings(detect_interval_seconds=10, confirm_seconds=2),  # type: ignore[arg-type]
                  now=cluster.clock)
    assert quiet.pauses == [10, 10, 10]
    # Product's 5xx seen once: the confirming reading comes after `confirm_seconds`; once the Incident
    # is open, the whole interval again.
    failing = Figures(product={"rate": 5.0, "error_ratio": 0.9, "p95": 0.05, "up": 1.0})
    seen = Pauses(cluster, 3)
    detector_loop(seen, cluster, failing, settings(detect_interval_seconds=10, confirm_seconds=2,  # type: ignore[arg-type]
                                                   breach_cycles=2), now=cluster.clock)
    [inc] = cluster.list_objects("Incident", NS)
    assert inc["spec"]["service"] == "product" and inc["spec"]["symptom"] == "error-rate"
    assert seen.pauses == [10, 2, 10, 10]


def test_a_namespace_with_a_change_under_way_is_watched_closely(cluster: MemoryCluster) -> None:
    from sre_operator.detection.loop import detector_loop
    cluster.tick(60)
    cluster.patch("Deployment", NS, "product", "merge", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})
    cluster.controllers()  # a new product pod: its figures are not in yet
    watched = Pauses(cluster, 8)
    detector_loop(watched, cluster, Figures(), settings(detect_interval_seconds=10, confirm_seconds=2),  # type: ignore[arg-type]
                  now=cluster.clock)
    # Every reading while the pod is young (the fake's clock moves 5 s a cycle) comes soon; then the interval.
    assert watched.pauses[:1] == [10] and 2 in watched.pauses[1:4] and watched.pauses[-2:] == [10, 10], watched.pauses
    assert cluster.list_objects("Incident", NS) == []


def test_a_reading_the_client_cannot_make_sense_of_does_not_end_the_detector(cluster: MemoryCluster,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from sre_operator.detection.loop import detector_loop
    scale_to_zero(cluster)
    real, calls = cluster.list_all, []

    def garbled(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise ValueError("unexpected end of JSON")  # not a ClusterError: once, it ended the thread
        return real(*args, **kw)
    monkeypatch.setattr(cluster, "list_all", garbled)
    detector_loop(Cycles(cluster, 3), cluster, Figures(), settings(breach_cycles=2),  # type: ignore[arg-type]
                  now=cluster.clock)
    [inc] = cluster.list_objects("Incident", NS)
    assert inc["spec"]["service"] == "product" and len(calls) > 1


def test_only_a_breach_that_could_still_open_an_incident_awaits_confirmation() -> None:
    from sre_operator.detection.detector import Detector, ServiceSignals
    from sre_operator.domain.policy import Thresholds
    det = Detector(Thresholds(for_cycles=2, cooldown_seconds=60))
    bad = [ServiceSignals("product", error_ratio=0.9, request_rate=5, desired=1, ready=1)]
    assert not det.awaiting_confirmation(now=0)
    assert det.observe(bad, now=0) == [] and det.awaiting_confirmation(now=0)
    [b] = det.observe(bad, now=2)
    det.opened(b.key)
    assert not det.awaiting_confirmation(now=2)  # open: nothing to confirm
    det.closed(b.key, now=3)
    det.observe(bad, now=4)
    assert not det.awaiting_confirmation(now=4)  # in its cooldown: it could not open one anyway
    det.observe([ServiceSignals("product", error_ratio=0.0, request_rate=5, desired=1, ready=1)], now=65)
    det.observe(bad, now=70)  # past the cooldown, seen once again: confirm it soon
    assert det.awaiting_confirmation(now=70)


def test_the_detector_loop_opens_one_incident_per_breach_over_cycles(cluster: MemoryCluster) -> None:
    from sre_operator.detection.loop import detector_loop
    scale_to_zero(cluster)
    metrics = Figures()
    metrics.down = True  # Kubernetes facts alone still show a workload scaled to 0
    detector_loop(Cycles(cluster, 3), cluster, metrics, settings(breach_cycles=2),  # type: ignore[arg-type]
                  now=cluster.clock)
    [inc] = cluster.list_objects("Incident", NS)
    assert inc["spec"]["service"] == "product" and inc["spec"]["symptom"] == "unavailable"
    assert metrics.windows == [WINDOW] * 3


def test_triage_reads_the_traces_of_the_service_and_its_callers(cluster: MemoryCluster) -> None:
    from sre_operator.domain.models import TraceFacts

    class Traces:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def evidence(self, service: str, limit: int = 5) -> list[TraceFacts]:
            self.asked.append(service)
            return [TraceFacts(trace_id=f"{service}-trace-1", root=f"{service}: GET", duration_ms=1200.0, spans=3,
                               failed_spans=["payment: HTTP 503"] if service == "order" else [])]

    traces = Traces()
    scale_to_zero(cluster, "payment")
    incident(cluster, service="payment", mode="dry-run")
    st = run(cluster, ports(cluster, Figures(), traces=traces), settings())
    assert traces.asked[:2] == ["payment", "order"]
    assert "trace order-tr (order: GET, 1200 ms): payment: HTTP 503" in st["triageSummary"]


def test_a_pod_already_gone_when_its_deletion_is_applied_counts_as_deleted(cluster: MemoryCluster) -> None:
    [pod] = [p["metadata"]["name"] for p in cluster.list_objects("Pod", NS, {"app.kubernetes.io/name": "payment"})]
    model = Model(MitigationPlan(rootCause="a stuck pod", confidence=0.6, planner="llm", actions=[
        Action(type="delete-pod", target=Target(kind="Pod", name=pod))]))
    cluster.patch_status("Pod", NS, pod, {"conditions": [{"type": "Ready", "status": "False"}]})  # stuck: borne out
    cluster.tick(60)
    incident(cluster, service="payment", symptom="not-ready")
    p, s = ports(cluster, Figures(), llm=model), settings(planner="llm")  # the model plans even where a rule would
    while not status(cluster).get("actions"):
        runner.tick(p, NS, "inc", s)
    # A delete has no patch type and no body: the record holds no null (the API server would drop it).
    assert status(cluster)["actions"][0]["intent"] == {"action": "delete-pod", "verb": "delete"}
    cluster.delete("Pod", NS, pod)  # its controller's doing, or an operator killed after deleting it
    runner.tick(p, NS, "inc", s)
    assert status(cluster)["actions"][0]["outcome"] == "applied"
    assert [w for w in cluster.writes if w[0] == "delete"] == [("delete", "Pod", pod, None)]


def test_a_deleted_deployment_is_recreated_from_its_last_healthy_copy_through_the_whole_pipeline() -> None:
    """The sealed action record of a create (no patch type) reads back as the API server stores it
    (no null fields): it must still verify, be applied, validated and resolved."""
    from tests.unit.actions.harness import healthy_shop

    cluster = healthy_shop()
    cluster.delete("Deployment", NS, "product")
    cluster.tick(10)
    incident(cluster)
    st = run(cluster, ports(cluster, Figures(order=dict(HEALTHY), product=dict(HEALTHY), payment=dict(HEALTHY))),
             settings())
    assert st["phase"] == "Resolved", st.get("message")
    assert [(a["type"], a["outcome"]) for a in st["actions"]] == [("recreate", "applied")]
    assert cluster.get("Deployment", NS, "product") is not None
