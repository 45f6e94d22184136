"""The operator heals faults nobody wrote a rule for by comparing now with the last healthy state:
an edit of a pod template by any hand is rolled back to the revision that has the healthy template
(not merely the previous one), a process that went bad with nothing changed is restarted, a
deleted workload is recreated, and an Incident the signals do not bear out gets no runtime action."""
from __future__ import annotations

from typing import Any

from sre_operator.detection.evidence import changes_since_healthy, evidence
from sre_operator.domain.models import Evidence, Symptom
from sre_operator.planning import rules
from tests.unit.actions.harness import NS, healthy_shop, read

CTR0 = "/spec/template/spec/containers/0"


def edit(cluster: Any, name: str, ops: list[dict[str, Any]]) -> None:
    """A person's `kubectl patch` (a new revision), then the controllers act."""
    cluster.patch("Deployment", NS, name, "json", ops)
    cluster.tick(5)
    cluster.controllers()


def ev_for(cluster: Any, service: str, kind: str = "unavailable", confirmed: bool = True) -> Evidence:
    symptom = Symptom(kind=kind, service=service, signal=f"{service} {kind}")  # type: ignore[arg-type]
    return evidence(read(cluster), [symptom], [], [], confirmed=confirmed)


def test_a_template_edit_is_named_and_rolled_back_to_the_healthy_revision_not_the_previous_one() -> None:
    cluster = healthy_shop()  # payment revision 1 is the healthy one
    edit(cluster, "payment", [{"op": "add", "path": f"{CTR0}/image", "value": "sre-operator/shop-paymnet:0.1.0"}])
    edit(cluster, "payment", [{"op": "add", "path": f"{CTR0}/args", "value": ["--workers", "0"]}])
    ev = ev_for(cluster, "payment")
    fields = {c.field.rsplit(".", 1)[-1] for c in ev.changes if c.name == "payment"}
    assert {"image", "args"} <= fields
    [w] = [x for x in ev.workloads if x.service == "payment"]
    assert (w.revision, w.previous_revision, w.healthy_revision) == (3, 2, 1)
    p = rules.plan(ev)
    assert [(a.type, a.target.name, a.revision) for a in p.actions] == [("rollback", "payment", 1)]
    assert "image" in p.root_cause


def test_nothing_changed_and_crashing_is_a_restart_and_an_unconfirmed_incident_gets_none() -> None:
    cluster = healthy_shop()
    assert changes_since_healthy(read(cluster), "order") == []
    p = rules.plan(ev_for(cluster, "payment", "crash-loop"))
    assert [(a.type, a.target.name) for a in p.actions] == [("rollout-restart", "payment")]
    slow = rules.plan(ev_for(cluster, "product", "latency"))
    assert [a.type for a in slow.actions] == ["rollout-restart"]  # no saturation: not a capacity problem
    assert rules.plan(ev_for(cluster, "payment", "crash-loop", confirmed=False)).actions == []


def test_a_config_that_differs_from_its_healthy_copy_is_restored_however_long_ago_it_changed() -> None:
    cluster = healthy_shop()
    cm = cluster.get("ConfigMap", NS, "gateway-config") or {}
    broken = cm["data"]["nginx.conf"].replace("server product:5002", "server product:5011")
    cluster.patch("ConfigMap", NS, "gateway-config", "merge", {"data": {"nginx.conf": broken}})
    cluster.tick(3600)
    ev = ev_for(cluster, "gateway", "error-rate")
    assert any(c.kind == "ConfigMap" and c.field == "data[nginx.conf]" for c in ev.changes)
    p = rules.plan(ev)
    assert [(a.type, a.target.name) for a in p.actions] == [("patch-configmap", "gateway-config"),
                                                            ("rollout-restart", "gateway")]


def test_a_deleted_deployment_is_missing_since_healthy_and_recreated() -> None:
    cluster = healthy_shop()
    cluster.delete("Deployment", NS, "product")
    ev = ev_for(cluster, "order", "error-rate")
    assert any(c.kind == "Deployment" and c.name == "product" and c.missing for c in ev.changes)
    p = rules.plan(ev)
    assert [(a.type, a.target.kind, a.target.name) for a in p.actions] == [("recreate", "Deployment", "product")]
