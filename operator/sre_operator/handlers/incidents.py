"""Incident handlers, registration only: the settings are read once at startup and kept in kopf's
memo; the detector loop (`detection/loop.py`) runs in a thread started with the operator; a daemon
per open Incident runs its pipeline (`incident/runner.py`) one persisted step at a time, so killing
the operator anywhere resumes the Incident where it stopped. Both report to the telemetry `main`
puts in the memo (none: nothing is recorded)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from ..adapters.kube import GROUP, VERSION, Kube
from ..adapters.llm_client import chat_client
from ..adapters.notify import HttpNotifier
from ..adapters.prometheus import PrometheusMetrics
from ..adapters.traces import TraceReader
from ..detection.loop import detector_loop
from ..detection.signals import remembering
from ..domain import clock
from ..domain.notify import Notifier
from ..domain.telemetry import NO_TELEMETRY, Telemetry
from ..domain.tracing import NO_SPANS
from ..domain.vocabulary import TERMINAL
from ..incident import notices, pipeline, retention
from ..incident.runner import Background, Ports, run_incident_async
from ..incident.step import Event
from ..planning.llm import LlmPlanner
from ..settings import Settings
from . import login  # noqa: F401 - registers the login handler

PLURAL = "incidents"


def settings_of(memo: kopf.Memo) -> Settings:
    """The settings read at startup (read now when a handler runs without the startup handler)."""
    settings = getattr(memo, "settings", None)
    if not isinstance(settings, Settings):
        settings = memo.settings = Settings()
    return settings


def telemetry_of(memo: kopf.Memo) -> Telemetry:
    """The operator's metrics (`main.run` serves them), or nothing recorded."""
    telemetry: Telemetry | None = getattr(memo, "telemetry", None)
    return telemetry if telemetry is not None else NO_TELEMETRY


def notifier_of(memo: kopf.Memo) -> Notifier | None:
    """The one notifier of the process (made at startup: kopf copies the memo per resource), or
    None when no sink is configured."""
    notifier: Notifier | None = getattr(memo, "notifier", None)
    return notifier


def runs(status: dict[str, Any] | None, memo: kopf.Memo) -> bool:
    """An Incident's daemon runs while it is open, and once more when finished but not yet told
    (a notice the last operator had not delivered before it stopped) or while the model's
    diagnosis asked in the background is awaited (recorded when it comes; after a restart, as not
    received)."""
    status = status or {}
    return status.get("phase") not in TERMINAL or (notifier_of(memo) is not None and notices.pending(status)) \
        or pipeline.diagnosis_pending(status)


@kopf.on.startup()
def start(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    settings = settings_of(memo)  # the one reading of the environment (main's, when it read them)
    workers_of(memo)  # on the operator's memo, before kopf copies it into each Incident's
    background_of(memo)
    if settings.sinks():
        memo.notifier = HttpNotifier(settings.sinks(), telemetry_of(memo), attempts=settings.notify_attempts,
                                     timeout=settings.notify_timeout_seconds)
        logger.info("notices go to the %s sink(s)", ", ".join(s.kind for s in settings.sinks()))
    if not settings.watched():
        logger.info("no SRE_OPERATOR_WATCH_NAMESPACES: the detector is off (incidents can still be created)")
        return
    kube = Kube()
    memo.detector_stop = threading.Event()
    t = threading.Thread(target=detector_loop, name="detector", daemon=True,
                         args=(memo.detector_stop, kube, PrometheusMetrics(settings.prometheus_url), settings,
                               remembering(kube)), kwargs={"telemetry": telemetry_of(memo)})
    t.start()
    logger.info("detector watching %s through %s", ", ".join(settings.watched()), settings.prometheus_url)


def workers_of(memo: kopf.Memo) -> ThreadPoolExecutor:
    """The threads the Incidents' ticks share, `incident_workers` of them. Made at startup on the
    operator's memo, which kopf copies (shallowly) into each object's memo, so every daemon gets
    the same pool; made on first use where no startup ran (a pool made in one Incident's own memo
    would be that Incident's alone: a pool, and threads, per Incident)."""
    workers = getattr(memo, "incident_workers", None)
    if not isinstance(workers, ThreadPoolExecutor):
        workers = memo.incident_workers = ThreadPoolExecutor(settings_of(memo).incident_workers,
                                                             thread_name_prefix="incident")
    return workers


def background_of(memo: kopf.Memo) -> Background:
    """The process's questions to the model asked in the background (made at startup on the
    operator's memo, as `workers_of`, so every daemon shares them and their threads)."""
    background = getattr(memo, "background", None)
    if not isinstance(background, Background):
        background = memo.background = Background()
    return background


@kopf.on.cleanup()
def stop_detector(memo: kopf.Memo, **_: Any) -> None:
    stop = getattr(memo, "detector_stop", None)
    if stop is not None:
        stop.set()
    workers = getattr(memo, "incident_workers", None)
    if isinstance(workers, ThreadPoolExecutor):
        workers.shutdown(wait=False, cancel_futures=True)
    background = getattr(memo, "background", None)
    if isinstance(background, Background):
        background.shutdown()


@kopf.daemon(GROUP, VERSION, PLURAL, id="run_incident", cancellation_timeout=10,
             when=lambda status, memo, **_: runs(status, memo))
async def incident_daemon(stopped: kopf.DaemonStopped, name: str, namespace: str | None, body: kopf.Body,
                          memo: kopf.Memo, **_: Any) -> None:
    if not namespace:  # Incidents are namespaced; kopf types the argument as optional
        return
    settings = settings_of(memo)
    llm_config = settings.llm_config()

    def emit(event: Event) -> None:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1000])
    ports = Ports(cluster=Kube(), metrics=PrometheusMetrics(settings.prometheus_url), emit=emit,
                  llm=LlmPlanner(llm_config, chat_client(llm_config)) if llm_config else None,
                  traces=TraceReader(settings.jaeger_url) if settings.jaeger_url else None,
                  telemetry=telemetry_of(memo), notifier=notifier_of(memo),
                  spans=getattr(memo, "spans", None) or NO_SPANS, background=background_of(memo))
    await run_incident_async(ports, namespace, name, settings, stopped, workers_of(memo))


@kopf.timer(GROUP, VERSION, PLURAL, id="expire_finished", interval=30, initial_delay=5,
            when=lambda status, **_: (status or {}).get("phase") in TERMINAL)
def expire_finished(body: kopf.Body, namespace: str | None, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """A finished Incident past `finished_ttl_seconds` is deleted (its Events and metrics remain)."""
    settings = settings_of(memo)
    if not namespace or not settings.acts_in(namespace) or settings.finished_ttl_seconds <= 0:
        return
    if retention.expire(Kube(), dict(body), clock.now(), settings.finished_ttl_seconds,
                        telling=notifier_of(memo) is not None):
        logger.info("deleted: finished more than %.0fs ago (finished_ttl_seconds)", settings.finished_ttl_seconds)
