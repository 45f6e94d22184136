"""The Incident handlers only wire the adapters into the ports and delegate: called as kopf calls
them, with the Kubernetes and Prometheus adapters swapped for the unit tier's stand-ins, the daemon
runs an Incident to its end through `incident.runner`, the startup handler reads the settings once
and starts the detector only when there is something to watch."""
from __future__ import annotations

import asyncio
import copy
import logging
import threading
from typing import Any

import kopf
import pytest

from sre_operator.adapters.telemetry import PrometheusTelemetry
from sre_operator.domain.snapshot import Snapshot
from sre_operator.handlers import incidents as handlers
from sre_operator.incident import runner
from sre_operator.settings import Settings
from tests.fake_llm import FakeLlm, Reply, diagnosis_reply
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import HEALTHY, Clock, Figures

LOG = logging.getLogger("test")


class AsyncClock(Clock):
    """`Clock` as an async daemon's `stopped` has it: `await stopped.wait(timeout)`, which lets the
    other daemons run."""

    async def wait(self, timeout: float) -> bool:  # type: ignore[override]  # noqa: ASYNC109 - kopf's signature
        await asyncio.sleep(0)
        return super().wait(timeout)


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
    asyncio.run(handlers.incident_daemon(stopped=AsyncClock(cluster, limit=50), name="inc",  # type: ignore[arg-type]
                                         namespace="shop", body=body, memo=memo))  # type: ignore[arg-type]
    status = (cluster.get("Incident", "shop", "inc") or {})["status"]
    assert status["phase"] == "DryRun" and "scale deployment/product" in status["message"]
    assert ("event", "Normal", "DryRun") in [w[:3] for w in cluster.writes if w[0] == "event"]
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 0  # a dry run acts on nothing
    assert memo.telemetry.registry.get_sample_value("sre_operator_phase_transitions_total", {"phase": "DryRun"}) == 1


def test_the_daemon_of_a_finished_incident_waits_for_the_model_s_diagnosis_then_ends(
        cluster: MemoryCluster) -> None:
    """Hybrid, a rule matches: the dry run finishes at once; the daemon waits for the diagnosis
    asked in the background on the process's own threads, records it and ends; kopf's filter keeps
    it running meanwhile."""
    cluster.patch("Deployment", "shop", "product", "merge", {"spec": {"replicas": 0}})
    cluster.controllers()
    cluster.create("Incident", "shop", {"metadata": {"name": "inc"}, "spec": {
        "service": "product", "symptom": "unavailable", "source": "kubernetes", "mode": "dry-run"}})
    slow = Reply(diagnosis_reply("Deployment", "product").content, delay=0.5)
    with FakeLlm(lambda req: slow).running() as fake:
        memo = kopf.Memo()
        memo.settings = Settings(watch_namespaces="shop", llm_base_url=fake.base_url, llm_model="small",
                                 llm_timeout_seconds=5, incident_workers=1)
        handlers.start(memo=memo, logger=LOG)
        body = cluster.objects[("Incident", "shop", "inc")]
        asyncio.run(handlers.incident_daemon(stopped=AsyncClock(cluster, limit=50), name="inc",  # type: ignore[arg-type]
                                             namespace="shop", body=body, memo=copy.copy(memo)))  # type: ignore[arg-type]
        handlers.stop_detector(memo=memo)
    status = (cluster.get("Incident", "shop", "inc") or {})["status"]
    [left_triage] = [w[3] for w in cluster.writes if w[0] == "patch_status" and w[3].get("phase") == "Planning"]
    assert left_triage["diagnosis"]["pendingSince"]  # it went on, and finished, before the answer came
    assert status["phase"] == "DryRun" and status["diagnosis"]["diagnosedBy"] == "llm"
    assert "pendingSince" not in status["diagnosis"] and status["llm"]["calls"] == 1 and len(fake.requests) == 1
    assert isinstance(memo.background, runner.Background)  # one per process, made at startup
    assert not handlers.runs(status, memo) and handlers.runs({**status, "diagnosis": {"pendingSince": "x"}}, memo)


def test_more_incidents_than_worker_threads_all_move_on_together(cluster: MemoryCluster,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve Incidents, one worker thread: each is taken on before any reaches its plan (a daemon
    that held its thread from start to plan would leave the others waiting), and no daemon holds
    a thread of its own."""
    services = ("product", "order", "payment")
    namespaces = [f"shop-{i}" for i in range(4)]
    for ns in namespaces:
        shop(cluster, ns)
        for svc in services:
            cluster.patch("Deployment", ns, svc, "merge", {"spec": {"replicas": 0}})
            cluster.create("Incident", ns, {"metadata": {"name": svc}, "spec": {
                "service": svc, "symptom": "unavailable", "source": "kubernetes", "mode": "dry-run"}})
    cluster.controllers()
    memo = kopf.Memo()  # the operator's; kopf gives each Incident's daemon a shallow copy made after startup
    memo.settings = Settings(incident_workers=1)  # no namespace named: no detector, acts anywhere
    handlers.start(memo=memo, logger=LOG)
    phases: list[tuple[str, str, str]] = []
    patch_status = cluster.patch_status

    def record(kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        if "phase" in status:
            phases.append((namespace, name, status["phase"]))
        patch_status(kind, namespace, name, status)
    cluster.patch_status = record  # type: ignore[method-assign]
    threads: set[tuple[int, str]] = set()
    tick = runner.tick

    def counted(*args: Any) -> Any:
        threads.add((threading.get_ident(), threading.current_thread().name))
        return tick(*args)
    monkeypatch.setattr(runner, "tick", counted)

    async def all_of_them() -> None:
        await asyncio.gather(*(handlers.incident_daemon(
            stopped=AsyncClock(cluster, limit=60), name=svc, namespace=ns,  # type: ignore[arg-type]
            body=cluster.objects[("Incident", ns, svc)], memo=copy.copy(memo))  # type: ignore[arg-type]
            for ns in namespaces for svc in services))
    asyncio.run(all_of_them())
    handlers.stop_detector(memo=memo)  # and the workers
    assert all((cluster.get("Incident", ns, svc) or {})["status"]["phase"] == "DryRun"
               for ns in namespaces for svc in services)
    first_plan = next(i for i, (_, _, phase) in enumerate(phases) if phase == "DryRun")
    taken_on = {(ns, name) for ns, name, phase in phases[:first_plan] if phase == "Triaging"}
    assert len(taken_on) == len(namespaces) * len(services)
    assert len(threads) == 1 and all(name.startswith("incident") for _, name in threads)  # one pool, one thread


def test_no_namespace_no_work_and_settings_read_once(cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    memo = kopf.Memo()
    asyncio.run(handlers.incident_daemon(stopped=AsyncClock(cluster, limit=1), name="x",  # type: ignore[arg-type]
                                         namespace=None, body={}, memo=memo))  # type: ignore[arg-type]
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
