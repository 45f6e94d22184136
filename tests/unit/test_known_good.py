"""The known-good record (detection.known_good, pure): what is remembered of a healthy shop, what
is not vouched for yet, and the whole-object copies a deleted object is recreated from (read back
through Snapshot.known_good_object)."""
from __future__ import annotations

import copy
import datetime as dt
import json

from sre_operator.detection.known_good import healthy_copy, remember
from sre_operator.domain.snapshot import Snapshot
from tests.fakes.cluster import MemoryCluster, shop

NS = "shop"
PART_OF = {"app.kubernetes.io/part-of": "shop"}


def record(cluster: MemoryCluster, previous: dict[str, str] | None = None, unreachable: set[str] | None = None,
           min_age: float = 120.0) -> dict[str, str]:
    return remember(previous or {}, config_maps=cluster.list_objects("ConfigMap", NS, PART_OF),
                    deployments=cluster.list_objects("Deployment", NS, PART_OF),
                    services=cluster.list_objects("Service", NS, PART_OF), unreachable=unreachable or set(),
                    now=cluster.clock(), min_age_seconds=min_age)


def test_a_healthy_shop_is_remembered_with_whole_copies_stripped_of_server_fields() -> None:
    cluster = shop(MemoryCluster())
    cluster.patch("Service", NS, "payment", "merge", {"spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]},
                                                     "metadata": {"ownerReferences": [{"kind": "X", "name": "y"}]}})
    data = record(cluster)
    assert data["_replicas.payment"] == "1"
    assert json.loads(data["_service.payment"])["selector"] == {"app.kubernetes.io/name": "payment"}
    assert data["gateway-config.nginx.conf"].startswith("upstream order")
    assert {k for k in data if k.startswith("_object.")} == {
        "_object.ConfigMap.gateway-config", *(f"_object.{kind}.{n}" for kind in ("Deployment", "Service")
                                              for n in ("gateway", "order", "payment", "product"))}
    dep = json.loads(data["_object.Deployment.payment"])
    assert dep["kind"] == "Deployment" and dep["spec"]["template"]["spec"]["containers"][0]["name"] == "payment"
    assert "status" not in dep
    assert set(dep["metadata"]) == {"name", "labels"}  # no uid, resourceVersion, managedFields, revision, ...
    svc = json.loads(data["_object.Service.payment"])
    assert "clusterIP" not in svc["spec"] and "clusterIPs" not in svc["spec"]
    assert "ownerReferences" not in svc["metadata"] and "namespace" not in svc["metadata"]
    snap = Snapshot(NS, cluster.clock(), known_good=data)
    assert snap.known_good_object("Deployment", "payment") == dep
    assert snap.known_good_object("Deployment", "ghost") is None


def test_a_copy_is_created_again_as_it_was() -> None:
    cluster = shop(MemoryCluster())
    original = cluster.get("Deployment", NS, "order")
    assert original
    copy = healthy_copy(original)
    cluster.delete("Deployment", NS, "order")
    again = cluster.create("Deployment", NS, copy)
    assert again["spec"] == original["spec"] and again["metadata"]["labels"] == original["metadata"]["labels"]
    assert again["metadata"]["uid"] != original["metadata"]["uid"]


def test_what_is_too_new_unreachable_or_scaled_to_zero_is_not_vouched_for() -> None:
    cluster = shop(MemoryCluster())
    cluster.tick(600)
    first = record(cluster)
    # Changed a moment ago: the previous entries stay.
    cluster.patch("ConfigMap", NS, "gateway-config", "merge", {"data": {"nginx.conf": "broken"}})
    cluster.patch("Deployment", NS, "order", "merge", {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}})
    cluster.patch("Service", NS, "product", "merge", {"spec": {"selector": {"app.kubernetes.io/name": "p2"}}})
    cluster.patch("Deployment", NS, "payment", "merge", {"spec": {"replicas": 0}})
    second = record(cluster, first, unreachable={"gateway"})
    for key in ("gateway-config.nginx.conf", "_object.ConfigMap.gateway-config", "_object.Deployment.order",
                "_service.product", "_object.Service.product", "_replicas.payment", "_object.Deployment.payment"):
        assert second[key] == first[key], key
    # Reaching no pod is never vouched for, however old the change.
    cluster.patch("Service", NS, "gateway", "merge", {"spec": {"selector": {"app.kubernetes.io/name": "gw2"}}})
    cluster.tick(600)
    third = record(cluster, second, unreachable={"gateway"})
    assert third["_service.gateway"] == first["_service.gateway"]
    assert third["gateway-config.nginx.conf"] == "broken"  # old enough now: vouched for
    # A deleted object keeps its copy: it is what it is recreated from.
    cluster.delete("Deployment", NS, "product")
    assert record(cluster, third)["_object.Deployment.product"] == first["_object.Deployment.product"]


def test_an_unreadable_copy_is_no_copy() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    snap = Snapshot(NS, now, known_good={"_object.Service.a": "{not json",
                                         "_object.Service.b": '{"metadata": {"name": "c"}}'})
    assert snap.known_good_object("Service", "a") is None
    assert snap.known_good_object("Service", "b") is None  # a copy of another object


def test_remembering_leaves_the_objects_as_they_were() -> None:
    """The copies are made without a deep copy of each object: the objects read stay untouched."""
    cluster = shop(MemoryCluster())
    cluster.patch("Service", NS, "payment", "merge", {"spec": {"clusterIP": "10.96.0.7"}, "metadata": {
        "annotations": {"deployment.kubernetes.io/revision": "3", "keep": "me"}}})
    objects = {kind: cluster.list_objects(kind, NS, PART_OF) for kind in ("ConfigMap", "Deployment", "Service")}
    before = copy.deepcopy(objects)
    data = remember({}, config_maps=objects["ConfigMap"], deployments=objects["Deployment"],
                    services=objects["Service"], unreachable=set(), now=cluster.clock(), min_age_seconds=0)
    assert objects == before
    svc = json.loads(data["_object.Service.payment"])
    assert svc["metadata"]["annotations"] == {"keep": "me"} and "clusterIP" not in svc["spec"]
    assert svc == {**healthy_copy(objects["Service"][[s["metadata"]["name"] for s in objects["Service"]].index(
        "payment")]), "kind": "Service"}
