"""The pipeline as traces: Incidents driven through the in-memory cluster by the real runner, with
the real OpenTelemetry adapter (`adapters/spans.py`) writing to the SDK's in-memory exporter. One
trace per Incident: its span (the root, made when it finishes) and one span per phase it went
through, and the model call with the GenAI semantic conventions' attributes."""
from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sre_operator.adapters.spans import OtlpSpans, root_span_id, trace_id
from sre_operator.domain.tracing import Ref
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    HEALTHY,
    NS,
    Figures,
    Model,
    incident,
    ports,
    run,
    scale,
    scale_to_zero,
    settings,
)


def test_one_trace_per_incident_with_a_span_per_phase_and_the_model_call(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    cluster.patch("Incident", NS, "inc", "merge", {"metadata": {"uid": "6f1c2a9e-5b7d-4c3e-9a10-2b3c4d5e6f70"}})
    exporter = InMemorySpanExporter()
    spans = OtlpSpans(exporter=exporter)
    p = ports(cluster, Figures(product=dict(HEALTHY)), llm=Model(scale("product", 2)), spans=spans)
    st = run(cluster, p, settings(llm_model="gpt-test", planner="llm"))
    assert st["phase"] == "Resolved"
    assert spans.flush()
    got = exporter.get_finished_spans()
    ref = Ref("6f1c2a9e-5b7d-4c3e-9a10-2b3c4d5e6f70", NS, "inc")
    assert {s.context.trace_id for s in got} == {0x6F1C2A9E5B7D4C3E9A102B3C4D5E6F70} == {trace_id(ref)}
    [root] = [s for s in got if s.name == "incident shop/inc"]
    assert root.parent is None and root.context.span_id == root_span_id(ref)
    assert root.attributes["sre.incident.phase"] == "Resolved" and root.attributes["sre.incident.service"] == "product"
    phases = [s for s in got if s.attributes.get("sre.incident.phase") and s is not root]
    assert [s.name for s in sorted(phases, key=lambda s: s.start_time)] == [
        "Detected", "Triaging", "Planning", "Mitigating", "Validating"]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in got if s is not root)
    validating = next(s for s in phases if s.name == "Validating")
    assert validating.attributes["sre.incident.next_phase"] == "Resolved"
    assert validating.end_time - validating.start_time >= 10 * 10**9  # an early verdict at the least (status times)
    assert root.start_time <= min(s.start_time for s in got) and root.end_time == validating.end_time
    calls = {s.attributes["sre.model.stage"]: s for s in got if s.name == "chat gpt-test"}
    assert set(calls) == {"triage", "planning"}  # planner=llm: the model is asked for both
    call = calls["planning"]
    assert call.attributes["gen_ai.operation.name"] == "chat" and call.attributes["gen_ai.request.model"] == "gpt-test"
    assert call.attributes["gen_ai.usage.input_tokens"] == 100 and "error.type" not in call.attributes
    assert calls["triage"].attributes["error.type"] == "no diagnosis scripted"  # the rules diagnosed instead


def test_a_failed_model_call_says_why_and_broken_spans_change_nothing(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    exporter = InMemorySpanExporter()
    spans = OtlpSpans(exporter=exporter)
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), llm=Model(None, "timed out"), spans=spans),
             settings(planner="llm"))
    assert st["phase"] == "Resolved" and spans.flush()
    [call] = [s for s in exporter.get_finished_spans()
              if s.name.startswith("chat ") and s.attributes["sre.model.stage"] == "planning"]
    assert call.attributes["error.type"] == "timed out"

    class Broken:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("tracing is down")
    incident(cluster, name="other", service="payment")
    cluster.patch("Deployment", NS, "payment", "merge", {"spec": {"replicas": 0}})
    cluster.controllers()
    st = run(cluster, ports(cluster, Figures(payment=dict(HEALTHY)), spans=Broken()), settings(), name="other")
    assert st["phase"] in ("Resolved", "Escalated")
