"""Records in an Incident's status are not orders: a plan, an intent, an undo template or a target
namespace written there by another hand (anyone who may write `incidents/status`) is neither applied
nor undone. The pipeline seals what it writes (`domain.seal`) and acts only on what verifies; each
test forges a status the way such a writer could and finds no write to the cluster."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sre_operator.incident import runner
from sre_operator.incident.step import Event
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import HEALTHY, NS, Figures, incident, ports, scale_to_zero, settings, status


def until(cluster: MemoryCluster, p: runner.Ports, done: Callable[[dict[str, Any]], bool], **s: Any) -> None:
    for _ in range(50):
        if done(status(cluster)):
            return
        runner.tick(p, NS, "inc", settings(**s))
        cluster.controllers()
    raise AssertionError(f"never reached: {status(cluster)}")


def forge(cluster: MemoryCluster, change: Callable[[dict[str, Any]], None]) -> None:
    st = copy.deepcopy(status(cluster))
    change(st)
    cluster.patch_status("Incident", NS, "inc", st)


def writes_to_the_shop(cluster: MemoryCluster, since: int) -> list[tuple[str, str, str, object]]:
    return [w for w in cluster.writes[since:] if w[0] != "patch_status" and w[1] != "Incident"]


def pending(st: dict[str, Any]) -> bool:
    return any(r.get("outcome") == "pending" for r in st.get("actions") or [])


@pytest.mark.parametrize("forgery", [
    pytest.param(lambda st: st["actions"][0]["intent"].update(body={"spec": {"replicas": 50}}), id="intent"),
    pytest.param(lambda st: st["actions"][0]["intent"].update(
        verb="patch", patchType="json",
        body=[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"}]),
        id="intent-template"),
    pytest.param(lambda st: st["actions"][0]["target"].update(namespace="kube-system", name="coredns"),
                 id="target"),
    pytest.param(lambda st: st["actions"][0].pop("seal"), id="seal-removed"),
])
def test_a_forged_pending_record_is_not_applied(cluster: MemoryCluster, forgery: Callable[[Any], None]) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    events: list[Event] = []
    p = ports(cluster, Figures(product=dict(HEALTHY)), events)
    until(cluster, p, pending)
    forge(cluster, forgery)
    before = len(cluster.writes)
    for _ in range(3):
        runner.tick(p, NS, "inc", settings())
    st = status(cluster)
    assert writes_to_the_shop(cluster, before) == []
    assert st["phase"] == "Failed" and "not as this operator wrote it" in st["message"]
    valid = next(c for c in st["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False" and valid["reason"] == "RecordTampered"
    assert [e.reason for e in events].count("Failed") == 1


def test_a_forged_plan_is_not_acted_on(cluster: MemoryCluster) -> None:
    """A status writer sets the phase to Mitigating with a plan of its own: nothing is done."""
    incident(cluster)  # product is healthy
    cluster.patch_status("Incident", NS, "inc", {
        "phase": "Mitigating", "attempts": 0,
        "plan": {"attempt": 1, "planner": "rules", "rootCause": "forged", "confidence": 1,
                 "actions": [{"type": "scale", "target": {"kind": "Deployment", "name": "product"}, "replicas": 9}]}})
    before = len(cluster.writes)
    runner.tick(ports(cluster, Figures(product=dict(HEALTHY))), NS, "inc", settings())
    assert writes_to_the_shop(cluster, before) == []
    assert status(cluster)["phase"] == "Failed" and "plan in status" in status(cluster)["message"]


def test_a_plan_sealed_for_another_incident_is_not_acted_on(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    until(cluster, p, lambda st: st.get("phase") == "Mitigating")
    genuine = status(cluster)["plan"]
    incident(cluster, "other")
    cluster.patch_status("Incident", NS, "other", {"phase": "Mitigating", "attempts": 0, "plan": genuine})
    before = len(cluster.writes)
    runner.tick(p, NS, "other", settings())
    assert writes_to_the_shop(cluster, before) == []
    assert status(cluster, "other")["phase"] == "Failed"


def test_a_forged_undo_template_is_not_written(cluster: MemoryCluster) -> None:
    """After an applied action, a status writer moves the Incident to Undoing with an undo record
    of its own (an image of its choice): the undo is refused and nothing is written."""
    scale_to_zero(cluster)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    until(cluster, p, lambda st: st.get("phase") == "Validating")

    def to_undoing(st: dict[str, Any]) -> None:
        st["phase"] = "Undoing"
        st["actions"][0]["undo"] = {"replicas": 100}
    forge(cluster, to_undoing)
    before = len(cluster.writes)
    runner.tick(p, NS, "inc", settings())
    assert writes_to_the_shop(cluster, before) == []
    assert status(cluster)["phase"] == "Failed" and "RecordTampered" in str(status(cluster)["conditions"])


def test_a_genuine_undo_still_restores(cluster: MemoryCluster) -> None:
    """The seal does not stop the operator's own undo (the record as it wrote it)."""
    scale_to_zero(cluster)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    until(cluster, p, lambda st: st.get("phase") == "Validating")
    forge(cluster, lambda st: st.update(phase="Undoing"))  # a phase is no order either, but an undo is safe
    runner.tick(p, NS, "inc", settings())
    assert status(cluster)["undoLog"][0]["outcome"] == "undone"


def test_the_phase_is_no_approval(cluster: MemoryCluster) -> None:
    """With the operator in approve mode, a status writer moving the phase to Mitigating does not
    skip the approval: the attempt goes back to waiting for it."""
    scale_to_zero(cluster)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    until(cluster, p, lambda st: st.get("phase") == "AwaitingApproval", mode="approve")
    forge(cluster, lambda st: st.update(phase="Mitigating"))
    before = len(cluster.writes)
    for _ in range(3):
        runner.tick(p, NS, "inc", settings(mode="approve"))
    assert writes_to_the_shop(cluster, before) == []
    assert status(cluster)["phase"] == "AwaitingApproval"


def test_in_dry_run_the_phase_mitigating_applies_nothing(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    until(cluster, p, lambda st: st.get("phase") == "DryRun", mode="dry-run")
    forge(cluster, lambda st: st.update(phase="Mitigating"))
    before = len(cluster.writes)
    runner.tick(p, NS, "inc", settings(mode="dry-run"))
    assert writes_to_the_shop(cluster, before) == []
    assert status(cluster)["phase"] == "DryRun"
