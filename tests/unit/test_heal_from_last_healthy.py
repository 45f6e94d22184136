"""The operator heals faults nobody wrote a rule for by comparing now with the last healthy state:
an edit of a pod template by any hand is rolled back to the revision that has the healthy template
(not merely the previous one), a process that went bad with nothing changed is restarted, a
deleted workload is recreated, and an Incident the signals do not bear out gets no runtime action."""
from __future__ import annotations

from typing import Any

from sre_operator.detection.detector import breaches
from sre_operator.detection.evidence import changes_since_healthy, evidence
from sre_operator.detection.signals import service_signals
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


def test_a_deleted_object_seen_healthy_is_a_breach_of_its_own_service_and_callers_fold_into_it() -> None:
    cluster = healthy_shop()
    cluster.delete("Service", NS, "payment")
    figures = {"gateway": {"rate": 5.0, "error_ratio": 0.0}, "order": {"rate": 2.0, "error_ratio": 0.6, "p95": 0.1}}
    found = {(b.service, b.symptom): b.signal for b in breaches(service_signals(read(cluster), figures))}
    assert found == {("payment", "endpoints-missing"): "Service payment no longer exists (it did when last seen "
                                                          "healthy)"}
    cluster.delete("Deployment", NS, "product")
    found = {(b.service, b.symptom) for b in breaches(service_signals(read(cluster), figures))}
    assert ("product", "unavailable") in found and ("order", "error-rate") not in found


def test_a_pod_that_cannot_start_is_a_breach_at_once_even_during_a_rollout() -> None:
    cluster = healthy_shop()
    cluster.broken.add("order")  # the new revision's pod never becomes Ready
    edit(cluster, "order", [{"op": "add", "path": f"{CTR0}/image", "value": "sre-operator/shop-ordr:0.1.0"}])
    for (kind, _, _), pod in cluster.objects.items():
        if kind == "Pod" and pod["metadata"]["labels"].get("app.kubernetes.io/name") == "order":
            pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                                                          "message": "no such image"}}
    # As a rolling update with maxUnavailable 0 leaves it: the old pod still serves (the fake has no surge).
    cluster.objects[("Deployment", NS, "order")]["status"].update(readyReplicas=1, updatedReplicas=0)
    [b] = [b for b in breaches(service_signals(read(cluster), {})) if b.service == "order"]
    assert b.symptom == "not-ready" and "ImagePullBackOff" in b.signal
    p = rules.plan(ev_for(cluster, "order", "not-ready"))
    assert [(a.type, a.revision) for a in p.actions] == [("rollback", 1)]


def test_a_restart_is_no_suspect_change_but_a_new_template_without_a_healthy_record_is() -> None:
    from tests.fakes.cluster import MemoryCluster, shop
    cluster = shop(MemoryCluster())  # no known-good record at all
    edit(cluster, "payment", [{"op": "add", "path": "/spec/template/metadata/annotations",
                               "value": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T12:00:00Z"}}])
    [w] = [x for x in ev_for(cluster, "payment", "crash-loop").workloads if x.service == "payment"]
    assert (w.revision, w.previous_revision, w.rollout_changed, w.healthy_copy) == (2, 1, False, False)
    assert [a.type for a in rules.plan(ev_for(cluster, "payment", "crash-loop")).actions] == ["rollout-restart"]
    edit(cluster, "payment", [{"op": "add", "path": f"{CTR0}/args", "value": ["--bad"]}])
    p = rules.plan(ev_for(cluster, "payment", "crash-loop"))
    assert [(a.type, a.revision) for a in p.actions] == [("rollback", 2)]


def test_a_model_s_rollback_goes_only_to_the_revision_last_seen_healthy() -> None:
    from sre_operator.domain.models import Action, MitigationPlan, Target
    from sre_operator.incident.pipeline import unhealthy_rollback

    def to(revision: int, name: str = "payment") -> MitigationPlan:
        return MitigationPlan(root_cause="x", confidence=0.5, planner="llm", actions=[Action(
            type="rollback", target=Target(kind="Deployment", name=name), revision=revision)])
    cluster = healthy_shop()  # payment revision 1 is the healthy one
    edit(cluster, "payment", [{"op": "add", "path": f"{CTR0}/image", "value": "sre-operator/shop-paymnet:0.1.0"}])
    edit(cluster, "payment", [{"op": "add", "path": f"{CTR0}/args", "value": ["--workers", "0"]}])
    ev, snap = ev_for(cluster, "payment"), read(cluster)
    assert unhealthy_rollback(to(1), ev, snap) == ""
    assert unhealthy_rollback(to(2), ev, snap) == ("deployment/payment revision 2 is not the template last seen "
                                                   "healthy (revision 1 is)")
    # Nothing changed since healthy (a process gone bad at runtime): no revision is the healthy one to go to.
    fresh = healthy_shop()
    edit(fresh, "order", [{"op": "add", "path": f"{CTR0}/args", "value": ["--workers", "0"]}])
    assert "the current template is" in unhealthy_rollback(to(1), ev_for(fresh, "payment"), read(fresh))
