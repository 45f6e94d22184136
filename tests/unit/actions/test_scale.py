"""scale: bounded replica counts on a Deployment of the application; undo puts the count back."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused

from .harness import act, healthy_shop, read, record_of, round_trip


def test_scale_round_trip_puts_the_count_back() -> None:
    cluster = healthy_shop()
    before, after, undone = round_trip(cluster, act("scale", "Deployment", "product", replicas=3))
    assert before and after and undone
    assert (before["spec"]["replicas"], after["spec"]["replicas"], undone["spec"]["replicas"]) == (1, 3, 1)
    assert len(cluster.list_objects("Pod", "shop", {"app.kubernetes.io/name": "product"})) == 1


@pytest.mark.parametrize(("action", "reason"), [
    (act("scale", "Deployment", "product"), "needs replicas"),
    (act("scale", "Deployment", "product", replicas=0), "allowed 1..10"),
    (act("scale", "Deployment", "product", replicas=11), "allowed 1..10"),
    (act("scale", "Deployment", "coredns", replicas=2), "not an object of this application"),
    (act("scale", "ConfigMap", "gateway-config", replicas=2), "acts on Deployment"),
    (act("scale", "Deployment", "product", replicas=2, namespace="kube-system"), "outside the incident's"),
])
def test_scale_is_refused_outside_its_bounds(action: object, reason: str) -> None:
    with pytest.raises(ActionRefused, match=reason):
        actions.prepare(action, read(healthy_shop()))  # type: ignore[arg-type]


def test_an_undo_record_without_a_count_undoes_nothing() -> None:
    action = act("scale", "Deployment", "product", replicas=2)
    p = actions.prepare(action, read(healthy_shop()))
    assert p.undo == {"replicas": 1} and p.summary == "scale deployment/product 1 → 2"
    assert actions.undo_of({**record_of(action, p), "undo": {}}) is None
