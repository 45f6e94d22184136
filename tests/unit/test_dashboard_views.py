"""The dashboard's view models, pure: node health never shows missing figures as ok, incident rows
and the pipeline timeline in order, the agents' log lines, the charts' marks."""
from __future__ import annotations

from sre_dashboard import views


def test_node_health_statuses() -> None:
    ok = views.node_health("product", {"rate": 3, "error_ratio": 0.0, "p95": 0.05}, {"desired": 1, "ready": 1}, True)
    assert ok["status"] == "ok" and ok["why"] == ""
    slow = views.node_health("product", {"rate": 3, "error_ratio": 0.0, "p95": 0.9}, {"desired": 1, "ready": 1}, True)
    assert slow["status"] == "degraded" and "P95 900 ms" in slow["why"]
    failing = views.node_health("order", {"rate": 3, "error_ratio": 0.4}, {"desired": 1, "ready": 1}, True)
    assert failing["status"] == "degraded" and "40% errors" in failing["why"]
    zero = views.node_health("payment", {"rate": 3}, {"desired": 0, "ready": 0}, True)
    assert zero["status"] == "down" and zero["why"] == "0/0 ready"
    # No figures is unknown, never ok: Prometheus away, or a service nothing measured.
    assert views.node_health("order", {}, {"desired": 1, "ready": 1}, False)["status"] == "unknown"
    assert views.node_health("order", None, {"desired": 1, "ready": 1}, True)["status"] == "unknown"
    unrouted = views.node_health("gateway", {"rate": 3, "unrouted_ratio": 0.8, "unrouted_route": "/api/products"},
                                 {"desired": 1, "ready": 1}, True)
    assert unrouted["status"] == "degraded" and "/api/products unrouted" in unrouted["why"]


def test_the_map_has_the_shop_s_nodes_and_calls() -> None:
    m = views.service_map({}, {}, True)
    assert [n["name"] for n in m["nodes"]] == ["gateway", "order", "product", "payment"]
    assert {"from": "order", "to": "payment"} in m["edges"] and len(m["edges"]) == 4
    assert {"from": "gateway", "to": "payment"} not in m["edges"]  # payment is the saga's to call, not the gateway's


INCIDENT = {
    "metadata": {"name": "payment-unavailable-x", "creationTimestamp": "2026-11-25T09:00:00Z"},
    "spec": {"service": "payment", "symptom": "unavailable", "summary": "payment has 0/1 ready replicas"},
    "status": {
        "phase": "Resolved", "attempts": 1, "timeToDetect": "4.0s", "timeToMitigate": "41.2s",
        "detectedAt": "2026-11-25T09:00:00Z", "mitigatedAt": "2026-11-25T09:00:09Z",
        "resolvedAt": "2026-11-25T09:00:41Z", "diagnosis": {"planner": "rules", "rootCause": "a rollout"},
        "timeline": [{"at": "2026-11-25T09:00:01Z", "phase": "Triaging", "message": "payment: unavailable"},
                     {"at": "2026-11-25T09:00:41Z", "phase": "Resolved", "message": "validated"}],
        "actions": [{"attempt": 1, "index": 0, "type": "rollback", "outcome": "applied", "message": "roll back",
                     "target": {"kind": "Deployment", "name": "payment"}, "startedAt": "2026-11-25T09:00:08Z",
                     "finishedAt": "2026-11-25T09:00:09Z", "undo": {"template": {"x": 1}}}],
        "validation": [{"attempt": 1, "at": "2026-11-25T09:00:40Z", "verdict": "better", "passed": True,
                        "message": "within SLO", "before": {"errorRatio": 1.0}, "after": {"errorRatio": 0.0}}],
    }}


def test_incident_row_and_timeline_in_order() -> None:
    row = views.incident_row(INCIDENT)
    assert (row["phase"], row["open"], row["timeToMitigate"], row["planner"]) == ("Resolved", False, "41.2s", "rules")
    d = views.incident_detail(INCIDENT)
    assert [s["kind"] for s in d["steps"]] == ["phase", "action", "validation", "phase"]
    action = d["steps"][1]
    assert action["title"] == "rollback deployment/payment" and action["undo"] == {"template": views.HIDDEN}
    assert views.incident_detail(INCIDENT, expose_records=True)["steps"][1]["undo"] == {"template": {"x": 1}}
    assert d["steps"][2]["after"] == {"errorRatio": 0.0} and "(passed)" in d["steps"][2]["title"]
    fresh = views.incident_row({"metadata": {"name": "n", "creationTimestamp": "t"}, "spec": {}})
    assert fresh["phase"] == "Detected" and fresh["open"] and fresh["detectedAt"] == "t"


def test_a_model_diagnosis_still_awaited_is_shown_as_such() -> None:
    import copy
    assert views.incident_detail(INCIDENT)["modelDiagnosis"] == ""
    waiting = copy.deepcopy(INCIDENT)
    waiting["status"]["diagnosis"] = {"diagnosedBy": "rules", "pendingSince": "2026-11-25T09:00:05Z"}
    shown = views.incident_detail(waiting)["modelDiagnosis"]
    assert "2026-11-25T09:00:05Z" in shown and "not in yet" in shown
    waiting["status"]["diagnosis"] = {"pendingSince": {"not": "text"}}  # read back from the cluster: untrusted
    assert views.incident_detail(waiting)["modelDiagnosis"] == ""


def test_log_lines_only_about_our_objects_and_marks_in_time_order() -> None:
    ev = {"metadata": {"uid": "u1"}, "involvedObject": {"kind": "Incident", "name": "payment-unavailable-x"},
          "reason": "Resolved", "message": "<script>x</script> validated", "type": "Normal",
          "lastTimestamp": "2026-11-25T09:00:41Z"}
    line = views.log_line(ev)
    assert line is not None and line["object"] == "Incident/payment-unavailable-x"
    assert line["message"] == "<script>x</script> validated"  # kept as text; the page never parses it as markup
    assert views.log_line({**ev, "involvedObject": {"kind": "Pod", "name": "p"}}) is None
    scenario = {"metadata": {"name": "crash"}, "spec": {"type": "payment-crash"},
                "status": {"injectedAt": "2026-11-25T08:59:55Z", "revertedAt": "2026-11-25T09:05:00Z"}}
    marks = views.markers([INCIDENT], [scenario])
    assert [m["kind"] for m in marks] == ["fault", "detected", "mitigated", "resolved", "reverted"]
