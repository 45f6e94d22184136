"""Missing data is never health: with the metrics source down, an Incident holds its phase in
triage and planning (nothing planned or applied on part of the evidence) as in validation, says so
once in status and one Event, and goes on when the source answers again; the detector neither
counts nor forgets a breach only the metrics can show."""
from __future__ import annotations

import pytest

from sre_operator.detection.detector import Detector, ServiceSignals
from sre_operator.domain.policy import Thresholds
from sre_operator.incident import runner
from sre_operator.incident.step import Event
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    HEALTHY,
    NS,
    Figures,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
    status,
)


@pytest.mark.parametrize("phase", ["Triaging", "Planning"])
def test_with_the_metrics_source_down_triage_and_planning_of_a_metric_symptom_hold(cluster: MemoryCluster,
                                                                                   phase: str) -> None:
    incident(cluster, service="product", symptom="latency", source="prometheus", mode="dry-run")
    metrics = Figures(product={**HEALTHY, "p95": 2.0})  # slow: borne out while the source answers
    events: list[Event] = []
    p, s = ports(cluster, metrics, events), settings()
    if phase == "Planning":
        run(cluster, p, s, until={"Planning"})
    metrics.down = True
    for _ in range(10):
        runner.tick(p, NS, "inc", s)
        cluster.tick(5)
    st = status(cluster)
    assert st["phase"] == phase, st.get("message")
    assert st["message"].startswith("waiting for the metrics source")
    assert not st.get("actions") and not st.get("plan")
    assert [e.reason for e in events].count("SignalsMissing") == 1  # said once, not once per tick
    metrics.down = False
    assert run(cluster, p, s)["phase"] == "DryRun"  # planned once the source answers


def test_a_structural_symptom_is_planned_on_the_kubernetes_facts_and_its_fix_not_judged_without_metrics(
        cluster: MemoryCluster) -> None:
    """Scaled to zero is a fact of the API: planned and fixed without Prometheus; validation then
    holds (the fix is kept, nothing undone) until the source answers."""
    scale_to_zero(cluster)
    incident(cluster)
    metrics = Figures(product=dict(HEALTHY))
    metrics.down = True
    p, s = ports(cluster, metrics), settings()
    st = run(cluster, p, s, limit=40)
    assert st["phase"] == "Validating" and st["message"].startswith("waiting for the metrics source")
    assert (cluster.get("Deployment", NS, "product") or {})["spec"]["replicas"] == 1 and not st.get("undoLog")
    metrics.down = False
    assert run(cluster, p, s)["phase"] == "Resolved"


def test_a_metric_breach_is_held_not_forgotten_while_the_source_is_down() -> None:
    d = Detector(Thresholds(for_cycles=3))
    slow = [ServiceSignals("product", p95_seconds=0.9, request_rate=3, desired=1, ready=1)]
    unknown = [ServiceSignals("product", desired=1, ready=1)]  # the source did not answer
    assert d.observe(slow, now=0) == []
    assert d.observe(slow, now=5) == []
    assert d.observe(unknown, now=10, complete=False) == []  # neither a third cycle nor a reset
    assert d.streaks == {"product/latency": 2}
    assert [b.key for b in d.observe(slow, now=15)] == ["product/latency"]


def test_a_healthy_reading_does_end_the_streak() -> None:
    d = Detector(Thresholds(for_cycles=2))
    d.observe([ServiceSignals("product", p95_seconds=0.9, request_rate=3, desired=1, ready=1)], now=0)
    d.observe([ServiceSignals("product", p95_seconds=0.05, request_rate=3, desired=1, ready=1)], now=5)
    assert d.streaks == {}
