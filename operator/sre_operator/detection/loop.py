"""The detector loop: every interval, one metrics reading for every watched namespace, then per
namespace one `Snapshot`, its signals, the breaches that persisted, and an Incident opened for each
(with the symptom's onset as `spec.detectedAt`). While a namespace is healthy and has no open
Incident, its objects are recorded as known-good (`remember`).

The handlers only start and stop it; tests call `detect_once` with an in-memory cluster."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from ..domain import clock
from ..domain.metrics import WINDOW, Metrics, MetricsReading
from ..domain.ports import Cluster
from ..domain.snapshot import Snapshot
from ..domain.telemetry import NO_TELEMETRY, Telemetry
from ..domain.vocabulary import TERMINAL, severity_of
from ..settings import Settings
from .detector import Detector, breaches
from .signals import Objects, objects_of, service_signals

log = logging.getLogger("sre_operator.detector")
API_VERSION = "sre.stratus.dev/v1alpha1"
KIND = "Incident"
# Records the namespace's objects as known-good (detection/known_good.py will own this).
Remember = Callable[[str, Objects], None]


def incident_body(name: str, service: str, symptom: str, source: str, key: str, summary: str,
                  onset: dt.datetime, max_attempts: int) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": name, "labels": {"sre.stratus.dev/service": service,
                                                  "sre.stratus.dev/symptom": symptom}},
            "spec": {"service": service, "symptom": symptom, "severity": severity_of(symptom).value,
                     "source": source, "dedupKey": key, "detectedAt": clock.stamp(onset),
                     "summary": summary[:1000], "maxAttempts": max_attempts}}


def detect_once(cluster: Cluster, namespace: str, det: Detector, settings: Settings, reading: MetricsReading,
                at: dt.datetime, remember: Remember | None = None) -> list[str]:
    """One reading of one namespace; returns the names of the Incidents it opened."""
    snap = Snapshot.read(cluster, namespace, at)
    figures = reading.of(namespace)
    signals = service_signals(snap, figures)
    open_keys = {str((i.get("spec") or {}).get("dedupKey", "")) for i in cluster.list_objects(KIND, namespace)
                 if (i.get("status") or {}).get("phase") not in TERMINAL}
    det.sync_open(open_keys)
    opened = []
    for b in det.observe(signals, at=at, complete=figures is not None):
        name = f"{b.service}-{b.symptom}-{uuid.uuid4().hex[:5]}"
        cluster.create(KIND, namespace, incident_body(name, b.service, b.symptom, b.source, b.key, b.signal,
                                                      det.onsets.get(b.key, at), settings.max_attempts))
        det.opened(b.key)
        opened.append(name)
        log.info("opened incident %s/%s: %s", namespace, name, b.signal)
    if remember is not None and figures is not None and not breaches(signals, det.thresholds) and not open_keys:
        remember(namespace, objects_of(snap))
    return opened


def detector_loop(stop: threading.Event, cluster: Cluster, metrics: Metrics, settings: Settings,
                  remember: Remember | None = None, now: Callable[[], dt.datetime] = clock.now,
                  telemetry: Telemetry = NO_TELEMETRY) -> None:
    """Reads every watched namespace once per interval: the metrics once for all of them, the
    Kubernetes API per namespace, several namespaces at a time. The next cycle starts one interval
    after the previous one started (at once if a cycle took longer: it then says it is falling
    behind). Each cycle's duration and the namespaces it read go to `telemetry`."""
    namespaces = settings.watched()
    detectors = {ns: Detector(settings.thresholds()) for ns in namespaces}
    interval = settings.detect_interval_seconds
    cycle, took, outage = 0, 0.0, ""

    def one(ns: str, *, reading: MetricsReading, at: dt.datetime) -> None:
        try:
            detect_once(cluster, ns, detectors[ns], settings, reading, at, remember)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad reading
            log.warning("detector %s: %s", ns, exc)

    with ThreadPoolExecutor(max_workers=min(8, len(namespaces)) or 1, thread_name_prefix="detect") as pool:
        while not stop.wait(max(0.0, interval - took)):
            started = time.monotonic()
            reading = metrics.read(namespaces, WINDOW)
            if reading.error != outage:  # once per outage, and once when it is over
                if reading.error:
                    log.warning("Prometheus unavailable: Kubernetes signals only, nothing read as healthy: %s",
                                reading.error)
                else:
                    log.info("Prometheus answers again")
                outage = reading.error
            at = now()
            list(pool.map(partial(one, reading=reading, at=at), namespaces))
            took = time.monotonic() - started
            cycle += 1
            telemetry.detector_cycle(took, len(namespaces))
            slow = took > interval
            level = logging.WARNING if slow else logging.INFO if cycle <= 3 or cycle % 12 == 0 else logging.DEBUG
            log.log(level, "detector cycle over %d namespaces took %.2fs%s", len(namespaces), took,
                    " (longer than the interval: falling behind)" if slow else "")
