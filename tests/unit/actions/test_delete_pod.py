"""delete-pod: only a pod of the application; nothing to undo; never taken as done (a pod is
deleted by name, and its controller's replacement has another)."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused

from .harness import act, apply, healthy_shop, read, record_of


def test_a_pod_of_the_application_is_deleted_and_replaced() -> None:
    cluster = healthy_shop()
    [pod] = cluster.list_objects("Pod", "shop", {"app.kubernetes.io/name": "order"})
    name = pod["metadata"]["name"]
    action = act("delete-pod", "Pod", name)
    p = actions.prepare(action, read(cluster))
    assert (p.verb, p.body, p.undo) == ("delete", None, {})
    apply(cluster, p)
    assert cluster.get("Pod", "shop", name) is None
    assert not actions.took_effect(actions.intent_of(p), None)
    assert not actions.took_effect(actions.intent_of(p), pod)
    assert actions.undo_of(record_of(action, p)) is None


def test_a_pod_outside_the_application_is_refused() -> None:
    cluster = healthy_shop()
    cluster.create("Pod", "shop", {"metadata": {"name": "stranger"}, "spec": {"containers": []}})
    with pytest.raises(ActionRefused, match="not an object of this application"):
        actions.prepare(act("delete-pod", "Pod", "stranger"), read(cluster))
