"""bench/cycle_profile.py's stand-in for the API server: the objects it makes are read by the
operator's own adapter and detector as a kwok shop would be (paged, by label, in storage order),
healthy, with a known-good record the operator finds up to date."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from kubernetes import client

from bench import cycle_profile
from sre_operator.adapters import kube as kube_adapter
from sre_operator.detection import signals
from sre_operator.detection.detector import breaches
from sre_operator.domain.policy import Thresholds
from sre_operator.domain.snapshot import Snapshot

LABELS = {"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/name": "api"}
SELECT = {"app.kubernetes.io/name": "api"}
DOCS = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config", "labels": LABELS},
     "data": {"a.conf": "x = 1\n"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "labels": LABELS},
     "spec": {"selector": SELECT, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": LABELS},
     "spec": {"replicas": 2, "selector": {"matchLabels": SELECT},
              "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [
                  {"name": "api", "image": "api:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}]}}}},
]
NAMESPACES = ["scale-0000", "scale-0001", "scale-0002"]


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[kube_adapter.Kube, cycle_profile.Store]]:
    monkeypatch.setattr(kube_adapter, "PAGE", 2)  # several pages a list
    store = cycle_profile.build(DOCS, len(NAMESPACES), healthy=True, incidents=1)
    server = cycle_profile.start(store)
    conf = client.Configuration()
    conf.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield kube_adapter.Kube(client.ApiClient(conf)), store
    finally:
        server.shutdown()


def test_the_operator_reads_the_stand_in_as_a_healthy_shop(kube: tuple[kube_adapter.Kube,
                                                                        cycle_profile.Store]) -> None:
    cluster, store = kube
    at = dt.datetime.now(dt.UTC)
    snaps = list(Snapshot.read_each(cluster, NAMESPACES, at))
    assert [s.namespace for s in snaps] == NAMESPACES
    remember = signals.remembering(cluster)
    for snap in snaps:
        assert {k: [o["metadata"]["name"] for o in snap.of(k)] for k in ("Deployment", "Service", "ConfigMap")} == {
            "Deployment": ["api"], "Service": ["api"], "ConfigMap": ["api-config"]}  # not kube-root-ca.crt
        assert len(snap.of("Pod")) == 2 and snap.known_good_version and snap.known_good["_replicas.api"] == "2"
        figures = {"api": {"rate": 5.0, "error_ratio": 0.0, "p95": 0.05, "up": 1.0}}
        found = signals.service_signals(snap, figures)
        assert [(s.service, s.ready, s.desired, s.endpoints_problem) for s in found] == [("api", 2, 2, None)]
        assert not breaches(found, Thresholds())
        remember(snap)
    assert store.writes == 0  # the records are as the operator would write them
    assert [i["metadata"]["namespace"] for i in cluster.list_all("Incident")] == ["scale-0000"]
