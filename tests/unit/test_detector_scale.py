"""The detector over many namespaces: one cluster-wide reading a cycle (a few list calls however
many namespaces, merged a namespace at a time in the API's storage order), each namespace's own
reading where listing every namespace is refused or a list comes out of order, and the same
snapshots and known-good record either way."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from sre_operator.adapters.kube import LAST_APPLIED, _lean
from sre_operator.detection.loop import detector_loop
from sre_operator.detection.signals import KNOWN_GOOD, Reader
from sre_operator.domain.ports import Obj
from sre_operator.domain.snapshot import DETECTED, OutOfOrder, Snapshot
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import HEALTHY, Cycles, Figures, settings

SHOPS = [f"shop-{i}" for i in range(6)]
BROKEN = ("shop-1", "shop-4")


def shops(cluster: MemoryCluster) -> None:
    for ns in SHOPS:
        shop(cluster, ns)
        cluster.create("ConfigMap", ns, {"metadata": {"name": "unrelated"}, "data": {"a": "b"}})
    for ns in BROKEN:
        cluster.patch("Deployment", ns, "product", "merge", {"spec": {"replicas": 0}})
    cluster.controllers()
    cluster.tick(60)


def run(cluster: MemoryCluster, cycles: int, remembered: list[str] | None = None) -> None:
    def remember(snap: Snapshot) -> None:
        if remembered is not None:
            remembered.append(snap.namespace)
    metrics = Figures(**{svc: dict(HEALTHY) for svc in ("order", "product", "payment")})
    detector_loop(Cycles(cluster, cycles), cluster, metrics,  # type: ignore[arg-type]
                  settings(breach_cycles=2, watch_namespaces=",".join(SHOPS)), remember, now=cluster.clock)


def opened(cluster: MemoryCluster) -> dict[str, list[str]]:
    return {ns: [i["spec"]["dedupKey"] for i in cluster.list_objects("Incident", ns)] for ns in SHOPS}


def test_one_cycle_reads_every_namespace_with_a_few_cluster_wide_calls() -> None:
    cluster = MemoryCluster()
    shops(cluster)
    remembered: list[str] = []
    run(cluster, 3, remembered)
    assert opened(cluster) == {ns: ["product/unavailable"] if ns in BROKEN else [] for ns in SHOPS}
    cluster.list_calls = 0
    run(cluster, 1)
    # Deployments, pods, Services, ConfigMaps, the known-good records, the Incidents: six calls a
    # cycle, none per namespace.
    assert cluster.list_all_calls == 6 * 4 and cluster.list_calls == 0
    assert sorted(set(remembered)) == sorted(set(SHOPS) - set(BROKEN))  # healthy ones only


def test_where_listing_every_namespace_is_refused_each_is_read_on_its_own() -> None:
    cluster = MemoryCluster()
    shops(cluster)
    cluster.all_namespaces_refused = True
    run(cluster, 3)
    assert opened(cluster) == {ns: ["product/unavailable"] if ns in BROKEN else [] for ns in SHOPS}
    assert cluster.list_all_calls == 1  # asked once, then not again
    assert cluster.list_calls >= 3 * len(SHOPS)


def test_the_known_good_record_is_the_same_from_the_cluster_wide_reading() -> None:
    wide, alone = MemoryCluster(), MemoryCluster()
    for cluster in (wide, alone):
        shops(cluster)
        for ns in SHOPS:  # as `kubectl apply` leaves them: the last-applied copy, field sets
            for kind, name in (("Deployment", "order"), ("Service", "order")):
                cluster.patch(kind, ns, name, "merge", {"metadata": {"annotations": {LAST_APPLIED: "{}"}}})
        cluster.tick(600)
    at = wide.clock()
    for snap in Snapshot.read_each(wide, SHOPS, at):
        Reader(wide, snap.namespace).remember_known_good(snapshot=snap)
    for ns in SHOPS:
        Reader(alone, ns).remember_known_good()
    for ns in SHOPS:
        record = wide.get("ConfigMap", ns, KNOWN_GOOD)
        assert record is not None and record["data"] == (alone.get("ConfigMap", ns, KNOWN_GOOD) or {})["data"]
    # Read back: the cluster-wide reading finds each namespace's record (by the operator's label).
    assert all(s.known_good == record_of(wide, s.namespace) for s in Snapshot.read_each(wide, SHOPS, at))


def record_of(cluster: MemoryCluster, ns: str) -> dict[str, Any]:
    return dict((cluster.get("ConfigMap", ns, KNOWN_GOOD) or {}).get("data") or {})


def test_the_adapter_keeps_when_and_by_whom_but_not_the_field_sets() -> None:
    obj = {"metadata": {"name": "a", "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
                        "managedFields": [{"manager": "kubectl", "operation": "Apply", "time": "2026-01-01T00:00:00Z",
                                           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}},
                                          {"manager": "kcm", "operation": "Update", "subresource": "status",
                                           "time": "2026-01-01T00:01:00Z", "fieldsV1": {}}]}}
    lean = _lean(obj, "Deployment")
    assert lean["kind"] == "Deployment" and lean["metadata"]["annotations"] == {"keep": "me"}
    assert lean["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Apply", "time": "2026-01-01T00:00:00Z"},
        {"manager": "kcm", "operation": "Update", "time": "2026-01-01T00:01:00Z", "subresource": "status"}]


def names(snap: Snapshot) -> dict[str, list[str]]:
    return {kind: sorted(o["metadata"]["name"] for o in snap.of(kind)) for kind in DETECTED}


def test_each_namespace_gets_its_own_objects_in_the_api_s_order_among_unwatched_ones() -> None:
    """`shop-a` sorts before `shop` in storage order (`shop-a/…` < `shop/…`), not as strings."""
    cluster = MemoryCluster()
    everywhere = ["shop", "shop-a", "shop-b", "other", "zzz"]
    for ns in everywhere:
        shop(cluster, ns)
    cluster.delete("Service", "shop-b", "payment")
    for ns in ("shop", "shop-b"):
        cluster.create("ConfigMap", ns, {"metadata": {"name": KNOWN_GOOD, "labels": {
            "app.kubernetes.io/managed-by": "sre-operator"}}, "data": {"_replicas.product": ns}})
    watched = ["shop-b", "shop", "shop-a", "absent"]
    at = cluster.clock()
    wide = {s.namespace: s for s in Snapshot.read_each(cluster, watched, at)}
    assert sorted(wide) == sorted(watched)
    for ns in watched:
        alone = Snapshot.read(cluster, ns, at)
        assert names(wide[ns]) == names(alone)
        assert wide[ns].known_good == record_of(cluster, ns)
        record = cluster.get("ConfigMap", ns, KNOWN_GOOD)
        assert wide[ns].known_good_version == alone.known_good_version == (
            record["metadata"]["resourceVersion"] if record else None)
    assert wide["shop"].known_good == {"_replicas.product": "shop"} and not wide["absent"].of("Deployment")


class Counted(MemoryCluster):
    """Counts the objects the reading has taken from the cluster-wide lists so far."""

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def list_all(self, kind: str, labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        for obj in super().list_all(kind, labels):
            self.taken += 1
            yield obj


def test_the_reading_holds_a_namespace_at_a_time_not_every_one() -> None:
    cluster = Counted()
    for ns in SHOPS:
        shop(cluster, ns)
    reading = Snapshot.read_each(cluster, SHOPS, cluster.clock())
    first = next(reading)
    per_namespace = sum(len(first.of(kind)) for kind in DETECTED)
    # Its own objects, the next namespace's (each list's head) and one of the one after, of six.
    assert first.namespace == SHOPS[0] and cluster.taken < 3 * per_namespace
    assert [s.namespace for s in reading] == SHOPS[1:]


class Unordered(MemoryCluster):
    """An API server whose Deployment list does not come in storage order."""

    def list_all(self, kind: str, labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        objects = list(super().list_all(kind, labels))
        return iter(objects[::-1] if kind == "Deployment" else objects)


def test_a_list_out_of_order_is_refused_and_each_namespace_read_on_its_own() -> None:
    cluster = Unordered()
    shops(cluster)
    with pytest.raises(OutOfOrder):
        list(Snapshot.read_each(cluster, SHOPS, cluster.clock()))
    run(cluster, 3)
    assert opened(cluster) == {ns: ["product/unavailable"] if ns in BROKEN else [] for ns in SHOPS}
    assert cluster.list_calls >= 2 * len(SHOPS)  # read on its own after the first cycle
