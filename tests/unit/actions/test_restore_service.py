"""restore-service: the selector and ports last seen healthy; undo puts the broken ones back."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused

from .harness import act, healthy_shop, read, round_trip

V2 = {"app.kubernetes.io/name": "payment-v2"}


def test_restore_service_round_trip() -> None:
    cluster = healthy_shop()
    cluster.patch("Service", "shop", "payment", "json", [{"op": "replace", "path": "/spec/selector", "value": V2}])
    before, after, undone = round_trip(cluster, act("restore-service", "Service", "payment"))
    assert before and after and undone
    assert after["spec"]["selector"] == {"app.kubernetes.io/name": "payment"}
    assert undone["spec"]["selector"] == V2


def test_a_selector_with_a_key_more_is_not_the_restored_one() -> None:
    cluster = healthy_shop()
    cluster.patch("Service", "shop", "payment", "json", [{"op": "replace", "path": "/spec/selector", "value": V2}])
    intent = actions.intent_of(actions.prepare(act("restore-service", "Service", "payment"), read(cluster)))
    current = cluster.get("Service", "shop", "payment")
    assert current
    current["spec"]["selector"] = {"app.kubernetes.io/name": "payment", "tier": "x"}
    assert not actions.took_effect(intent, current)
    current["spec"]["selector"] = {"app.kubernetes.io/name": "payment"}
    current["spec"]["ports"][0]["nodePort"] = 30001  # a default the server adds does not matter
    assert actions.took_effect(intent, current)


def test_a_service_without_a_record_or_outside_the_application_is_refused() -> None:
    cluster = healthy_shop()
    cluster.create("Service", "shop", {"metadata": {"name": "kubernetes"}, "spec": {"ports": []}})
    with pytest.raises(ActionRefused, match="not an object of this application"):
        actions.prepare(act("restore-service", "Service", "kubernetes"), read(cluster))
    cluster.patch("ConfigMap", "shop", "sre-operator-known-good", "merge", {"data": {"_service.payment": None}})
    with pytest.raises(ActionRefused, match="no known-good version of service/payment"):
        actions.prepare(act("restore-service", "Service", "payment"), read(cluster))
