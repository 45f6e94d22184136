"""The detector over many namespaces: one cluster-wide reading a cycle (a few list calls however
many namespaces), each namespace's own reading where listing every namespace is refused, and the
same known-good record either way."""
from __future__ import annotations

from typing import Any

from sre_operator.adapters.kube import LAST_APPLIED, _lean
from sre_operator.detection.loop import detector_loop
from sre_operator.detection.signals import KNOWN_GOOD, Reader
from sre_operator.domain.snapshot import Snapshot
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
    for ns, snap in Snapshot.read_all(wide, SHOPS, at).items():
        Reader(wide, ns).remember_known_good(snapshot=snap)
    for ns in SHOPS:
        Reader(alone, ns).remember_known_good()
    for ns in SHOPS:
        record = wide.get("ConfigMap", ns, KNOWN_GOOD)
        assert record is not None and record["data"] == (alone.get("ConfigMap", ns, KNOWN_GOOD) or {})["data"]
    # Read back: the cluster-wide reading finds each namespace's record (by the operator's label).
    assert all(s.known_good == record_of(wide, s.namespace) for s in Snapshot.read_all(wide, SHOPS, at).values())


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
