"""Every plan is vetted whole before any of it is done, the rules planner's too: a plan with one
action the allowlist or the namespace refuses has none of its actions applied."""
from __future__ import annotations

import pytest

from sre_operator.domain.models import Action, MitigationPlan, Target
from sre_operator.incident import pipeline
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    HEALTHY,
    Figures,
    deployment_patches,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
)


@pytest.mark.parametrize("bad", [
    pytest.param(Action(type="scale", target=Target(kind="Deployment", name="coredns", namespace="kube-system"),
                        replicas=0), id="other-namespace"),
    pytest.param(Action(type="scale", target=Target(kind="Deployment", name="prometheus"), replicas=0),
                 id="not-the-application"),
    pytest.param(Action(type="rollback", target=Target(kind="Deployment", name="order"), revision=99),
                 id="no-such-revision"),
])
def test_a_rules_plan_with_a_refused_action_is_not_started(cluster: MemoryCluster, bad: Action,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    good = Action(type="scale", target=Target(kind="Deployment", name="product"), replicas=1)
    monkeypatch.setattr(pipeline.planner, "plan", lambda ev, tried=None: MitigationPlan(
        rootCause="scaled to 0", confidence=0.9, planner="rules", actions=[good, bad]))
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings())
    assert st["phase"] == "Escalated" and "rules planner's plan was refused" in st["message"], st.get("message")
    assert not st.get("actions")
    assert deployment_patches(cluster, "product") == [{"spec": {"replicas": 0}}]  # the test's own, nothing more
    assert "Mitigating" not in [e["phase"] for e in st["timeline"]]
