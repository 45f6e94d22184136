"""An Incident's symptoms are a claim: anyone who may create an Incident can claim a crash loop on
a healthy service. Nothing is done on a claim the signals do not bear out, whichever planner plans."""
from __future__ import annotations

import pytest

from sre_operator.domain.models import Action, MitigationPlan, Target
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    HEALTHY,
    Figures,
    Model,
    deployment_patches,
    incident,
    ports,
    run,
    settings,
)


def restart(name: str) -> MitigationPlan:
    return MitigationPlan(rootCause="crash loop", confidence=0.9, planner="llm", actions=[
        Action(type="rollout-restart", target=Target(kind="Deployment", name=name), reason="fresh pods")])


@pytest.mark.parametrize("symptom", ["crash-loop", "unavailable", "latency", "error-rate", "oom"])
@pytest.mark.parametrize("with_model", [False, True], ids=["rules", "model"])
def test_a_forged_incident_on_a_healthy_service_causes_no_action(cluster: MemoryCluster, symptom: str,
                                                                 with_model: bool) -> None:
    incident(cluster, service="product", symptom=symptom, source="kubernetes", summary="product crash-looping")
    model = Model(restart("product")) if with_model else None
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), llm=model), settings())
    assert st["phase"] == "Escalated", st.get("message")
    assert not st.get("actions")
    assert deployment_patches(cluster, "product") == []
    if with_model:
        assert "do not bear out" in st["diagnosis"]["fallbackReason"]
