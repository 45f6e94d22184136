"""Incident handlers: the detector loop (started with the operator) opens Incidents from what it
sees; a daemon per open Incident runs its pipeline one persisted step at a time, so killing the
operator anywhere resumes the Incident where it stopped."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from pydantic import ValidationError

from ..adapters.kube import GROUP, VERSION, Kube
from ..adapters.prometheus import PrometheusUnavailable, PromSnapshot, prometheus_client
from ..detection.detector import Detector, breaches
from ..detection.signals import Reader
from ..incident.pipeline import TERMINAL, Config, IncidentRun, now, ts
from ..planning.llm import LlmPlanner
from ..settings import Settings
from . import login  # noqa: F401 - registers the login handler

PLURAL = "incidents"
log = logging.getLogger("sre_operator.detector")
SEVERITY = {"unavailable": "critical", "crash-loop": "critical", "oom": "critical", "error-rate": "critical",
            "endpoints-missing": "critical", "route-missing": "critical"}


def detect_once(kube: Kube, namespace: str, det: Detector, settings: Settings,
                snapshot: PromSnapshot | None = None) -> list[str]:
    """One reading of one namespace; returns the names of the Incidents it opened."""
    reader = Reader(kube, namespace, settings.prometheus_url, snapshot=snapshot)
    objects = reader.objects()  # one read of the shop's objects serves the signals and the known-good record
    signals, complete = reader.read(objects=objects)
    open_keys = {i["spec"].get("dedupKey", "") for i in kube.list_custom(PLURAL, namespace)
                 if (i.get("status") or {}).get("phase") not in TERMINAL}
    det.sync_open(open_keys)
    opened = []
    first_seen = now()
    for b in det.observe(signals):
        name = f"{b.service}-{b.symptom}-{uuid.uuid4().hex[:5]}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Incident",
                "metadata": {"name": name, "labels": {"sre.stratus.dev/service": b.service,
                                                      "sre.stratus.dev/symptom": b.symptom}},
                "spec": {"service": b.service, "symptom": b.symptom, "severity": SEVERITY.get(b.symptom, "warning"),
                         "source": b.source, "dedupKey": b.key, "detectedAt": ts(first_seen),
                         "summary": b.signal[:1000], "maxAttempts": settings.max_attempts}}
        kube.create_custom(PLURAL, namespace, body)
        det.opened(b.key)
        opened.append(name)
        log.info("opened incident %s/%s: %s", namespace, name, b.signal)
    if complete and not breaches(signals, det.thresholds) and not open_keys:
        reader.remember_known_good(objects=objects)
    return opened


def one(kube: Kube, ns: str, det: Detector, settings: Settings, snapshot: PromSnapshot) -> None:
    try:
        detect_once(kube, ns, det, settings, snapshot)
    except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad reading
        log.warning("detector %s: %s", ns, exc)


def detector_loop(stop: threading.Event, settings: Settings) -> None:
    """Reads every watched namespace once per interval: Prometheus once for all of them (one set of
    queries grouped by namespace), the Kubernetes API per namespace, several namespaces at a time.
    The next cycle starts one interval after the previous one started (at once if a cycle took
    longer: it then says it is falling behind)."""
    kube = Kube()
    namespaces = settings.watched()
    detectors = {ns: Detector(settings.thresholds()) for ns in namespaces}
    prom = prometheus_client(settings.prometheus_url)
    interval = settings.detect_interval_seconds
    cycle, took, outage = 0, 0.0, ""
    with ThreadPoolExecutor(max_workers=min(8, len(namespaces)) or 1, thread_name_prefix="detect") as pool:
        while not stop.wait(max(0.0, interval - took)):
            started = time.monotonic()
            snapshot = PromSnapshot.take(prom, settings.prometheus_url, namespaces)
            if snapshot.error != outage:  # once per outage, and once when it is over
                if snapshot.error:
                    log.warning("Prometheus unavailable: Kubernetes signals only, nothing read as healthy: %s",
                                snapshot.error)
                else:
                    log.info("Prometheus answers again")
                outage = snapshot.error

            list(pool.map(one, [kube] * len(namespaces), namespaces, [detectors[n] for n in namespaces],
                          [settings] * len(namespaces), [snapshot] * len(namespaces)))
            took = time.monotonic() - started
            cycle += 1
            slow = took > interval
            level = logging.WARNING if slow else logging.INFO if cycle <= 3 or cycle % 12 == 0 else logging.DEBUG
            log.log(level, "detector cycle over %d namespaces took %.2fs%s", len(namespaces), took,
                    " (longer than the interval: falling behind)" if slow else "")


@kopf.on.startup()
def start_detector(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    settings = Settings()  # read when the operator starts
    if not settings.watched():
        logger.info("no SRE_OPERATOR_WATCH_NAMESPACES: the detector is off (incidents can still be created)")
        return
    memo.detector_stop = threading.Event()
    t = threading.Thread(target=detector_loop, args=(memo.detector_stop, settings), name="detector", daemon=True)
    t.start()
    logger.info("detector watching %s through %s", ", ".join(settings.watched()), settings.prometheus_url)


@kopf.on.cleanup()
def stop_detector(memo: kopf.Memo, **_: Any) -> None:
    stop = getattr(memo, "detector_stop", None)
    if stop is not None:
        stop.set()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10,
             when=lambda status, **_: (status or {}).get("phase") not in TERMINAL)
def run_incident(stopped: kopf.DaemonStopped, name: str, namespace: str, body: Any, logger: Any, **_: Any) -> None:
    settings = Settings()
    kube = Kube()
    reader = Reader(kube, namespace, settings.prometheus_url, traces=settings.trace_reader())
    config = Config(settle_seconds=settings.settle_seconds, default_mode=settings.mode,
                    thresholds=settings.thresholds(), caps=settings.caps(),
                    watched=frozenset(settings.watched()) or None)
    llm_config = settings.llm_config()
    llm = LlmPlanner(llm_config) if llm_config else None

    def emit(etype: str, reason: str, message: str) -> None:
        kopf.event(body, type=etype, reason=reason, message=message[:1000])
    waiting, failures = "", 0
    while not stopped:
        incident = kube.get_custom(PLURAL, namespace, name)
        if incident is None:
            return
        run = IncidentRun(kube, reader, incident, config, llm=llm, emit=emit)
        try:
            if run.step():
                return
            waiting = ""
            failures = 0
        except PrometheusUnavailable as exc:
            if waiting != str(exc):  # say so once, keep the phase, never act on missing data
                run.save(message=f"waiting for Prometheus: {exc}")
                waiting = str(exc)
            stopped.wait(5)
        except (ValidationError, KeyError, TypeError) as exc:  # the Incident itself cannot be read
            logger.warning("incident %s/%s cannot be handled: %s", namespace, name, exc)
            run.fail("InvalidIncident", f"cannot handle this incident: {type(exc).__name__}: {str(exc)[:500]}")
            return
        except Exception as exc:  # noqa: BLE001 - an API hiccup: back off and retry, never crash
            failures += 1
            delay = min(60.0, 2.0 ** failures)
            logger.warning("incident %s/%s: %s; retrying in %.0fs", namespace, name, exc, delay)
            try:
                run.save(message=f"retrying in {delay:.0f}s after an error: {str(exc)[:300]}")
            except Exception:  # noqa: BLE001 - the API server may be the thing that is down
                pass
            stopped.wait(delay)
        stopped.wait(1)
