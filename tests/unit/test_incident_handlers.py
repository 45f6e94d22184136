"""The Incident handlers only wire the adapters into the ports and delegate: called as kopf calls
them, with the Kubernetes and Prometheus adapters swapped for the unit tier's stand-ins, the daemon
runs an Incident to its end through `incident.runner`, the startup handler reads the settings once
and starts the detector only when there is something to watch."""
from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
import pytest

from sre_operator.adapters.telemetry import PrometheusTelemetry
from sre_operator.domain.snapshot import Snapshot
from sre_operator.handlers import incidents as handlers
from sre_operator.settings import Settings
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import HEALTHY, Clock, Figures

LOG = logging.getLogger("test")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> MemoryCluster:
    c = shop(MemoryCluster())
    monkeypatch.setattr(handlers, "Kube", lambda: c)
    monkeypatch.setattr(handlers, "PrometheusMetrics", lambda url: Figures(product=dict(HEALTHY)))
    def event(body: Any, **kw: str) -> None:
        c.writes.append(("event", kw["type"], kw["reason"], kw["message"]))
    monkeypatch.setattr(kopf, "event", event)
    return c


def test_the_daemon_runs_an_incident_through_the_runner_with_the_memo_s_settings(cluster: MemoryCluster) -> None:
    cluster.patch("Deployment", "shop", "product", "merge", {"spec": {"replicas": 0}})
    cluster.create("Incident", "shop", {"metadata": {"name": "inc"}, "spec": {
        "service": "product", "symptom": "unavailable", "source": "kubernetes", "mode": "dry-run"}})
    memo = kopf.Memo()
    memo.settings = Settings(watch_namespaces="shop")
    memo.telemetry = PrometheusTelemetry()  # what main.run puts in the memo
    body = cluster.objects[("Incident", "shop", "inc")]
    handlers.incident_daemon(stopped=Clock(cluster, limit=50), name="inc", namespace="shop",  # type: ignore[arg-type]
                             body=body, memo=memo)  # type: ignore[arg-type]
    status = (cluster.get("Incident", "shop", "inc") or {})["status"]
    assert status["phase"] == "DryRun" and "scale deployment/product" in status["message"]
    assert ("event", "Normal", "DryRun") in [w[:3] for w in cluster.writes if w[0] == "event"]
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 0  # a dry run acts on nothing
    assert memo.telemetry.registry.get_sample_value("sre_operator_phase_transitions_total", {"phase": "DryRun"}) == 1


def test_no_namespace_no_work_and_settings_read_once(cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    memo = kopf.Memo()
    handlers.incident_daemon(stopped=Clock(cluster, limit=1), name="x", namespace=None,  # type: ignore[arg-type]
                             body={}, memo=memo)  # type: ignore[arg-type]
    assert not hasattr(memo, "settings")
    monkeypatch.delenv("SRE_OPERATOR_WATCH_NAMESPACES", raising=False)
    handlers.start(memo=memo, logger=LOG)
    assert isinstance(memo.settings, Settings) and not hasattr(memo, "detector_stop")  # nothing to watch
    assert handlers.settings_of(memo) is memo.settings


def test_startup_starts_the_detector_and_cleanup_stops_it(cluster: MemoryCluster,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[Any, ...]] = []
    started_kwargs: list[dict[str, Any]] = []
    monkeypatch.setenv("SRE_OPERATOR_WATCH_NAMESPACES", "shop")

    class Thread:
        def __init__(self, target: Any, name: str, daemon: bool, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> None:
            self.args, self.kwargs = args, kwargs

        def start(self) -> None:
            started.append(self.args)
            started_kwargs.append(self.kwargs)
    monkeypatch.setattr(handlers.threading, "Thread", Thread)
    memo = kopf.Memo()
    handlers.start(memo=memo, logger=LOG)
    [(stop, kube, _metrics, settings, remember)] = started
    assert started_kwargs == [{"telemetry": handlers.NO_TELEMETRY}]  # none in the memo: nothing recorded
    assert kube is cluster and settings is memo.settings and settings.watched() == ["shop"]
    remember(Snapshot.read(cluster, "shop", cluster.clock()))
    assert cluster.get("ConfigMap", "shop", "sre-operator-known-good") is not None  # the known-good record
    handlers.stop_detector(memo=memo)
    assert isinstance(stop, threading.Event) and stop.is_set()
