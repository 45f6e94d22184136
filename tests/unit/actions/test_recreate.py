"""recreate: a deleted Deployment, Service or ConfigMap of the application, created again from its
last healthy copy; only while it is absent and a copy is on record; undo deletes it again."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused

from .harness import act, healthy_shop, read, round_trip


@pytest.mark.parametrize(("kind", "name"), [("Deployment", "payment"), ("Service", "payment"),
                                        ("ConfigMap", "gateway-config")])
def test_a_deleted_object_is_recreated_from_its_healthy_copy_and_deleted_again_on_undo(kind: str, name: str) -> None:
    cluster = healthy_shop()
    original = cluster.get(kind, "shop", name)
    assert original
    cluster.delete(kind, "shop", name)
    before, after, undone = round_trip(cluster, act("recreate", kind, name))
    assert before is None and undone is None
    assert after and after["metadata"]["labels"] == original["metadata"]["labels"]
    assert after["metadata"]["annotations"]["sre.stratus.dev/recreated-from"] == "known-good"
    assert after.get("spec") == original.get("spec") and after.get("data") == original.get("data")
    assert after["metadata"]["uid"] != original["metadata"]["uid"]  # a new object, not the old one


def test_a_recreated_deployment_runs_its_pods_again() -> None:
    cluster = healthy_shop()
    cluster.delete("Deployment", "shop", "product")
    p = actions.prepare(act("recreate", "Deployment", "product"), read(cluster))
    assert (p.verb, p.patch_type, p.undo) == ("create", None, {"recreated": True})
    assert p.body["metadata"]["namespace"] == "shop" and "uid" not in p.body["metadata"]
    cluster.create(p.kind, p.namespace, p.body)
    cluster.controllers()
    assert cluster.list_objects("Pod", "shop", {"app.kubernetes.io/name": "product"})


def test_an_object_that_exists_or_has_no_copy_is_not_recreated() -> None:
    cluster = healthy_shop()
    with pytest.raises(ActionRefused, match="exists: there is nothing to recreate"):
        actions.prepare(act("recreate", "Service", "payment"), read(cluster))
    with pytest.raises(ActionRefused, match="no healthy copy of deployment/ghost on record"):
        actions.prepare(act("recreate", "Deployment", "ghost"), read(cluster))
    with pytest.raises(ActionRefused, match="acts on"):
        actions.check(act("recreate", "Pod", "payment-1"), "shop")
    assert not actions.took_effect({"action": "recreate", "verb": "create"}, None)


def test_an_object_of_that_name_the_operator_did_not_create_is_not_taken_as_its_own() -> None:
    cluster = healthy_shop()
    cluster.delete("Service", "shop", "payment")
    intent = actions.intent_of(actions.prepare(act("recreate", "Service", "payment"), read(cluster)))
    cluster.create("Service", "shop", {"metadata": {"name": "payment"}, "spec": {"ports": []}})  # someone else's
    assert not actions.took_effect(intent, cluster.get("Service", "shop", "payment"))
