"""The detector loop: every interval, one metrics reading and one Kubernetes reading for every
watched namespace (a few cluster-wide list calls read a page at a time: `Snapshot.read_each`),
then per namespace its signals, the breaches that persisted, and an Incident opened for each (with
the symptom's onset as `spec.detectedAt`). While a namespace is healthy and has no open
Incident, its snapshot is recorded as known-good (`remember`). Where the operator may not list
every namespace (a Role per watched namespace), it reads each namespace on its own.

The handlers only start and stop it; tests call `detect_once` with an in-memory cluster."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial

from ..domain import clock
from ..domain.metrics import WINDOW, Metrics, MetricsReading
from ..domain.ports import Cluster, ClusterError, Obj
from ..domain.snapshot import OutOfOrder, Snapshot
from ..domain.telemetry import NO_TELEMETRY, Telemetry
from ..domain.vocabulary import TERMINAL, severity_of
from ..settings import Settings
from .detector import Detector, breaches
from .signals import service_signals

log = logging.getLogger("sre_operator.detector")
API_VERSION = "sre.stratus.dev/v1alpha1"
KIND = "Incident"
# Records a healthy namespace's snapshot as known-good (`signals.Reader.remember_known_good`).
Remember = Callable[[Snapshot], None]


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
    """One reading of one namespace on its own; returns the names of the Incidents it opened."""
    return detect_in(cluster, Snapshot.read(cluster, namespace, at), cluster.list_objects(KIND, namespace), det,
                     settings, reading, remember)


def detect_in(cluster: Cluster, snap: Snapshot, incidents: list[Obj], det: Detector, settings: Settings,
              reading: MetricsReading, remember: Remember | None = None) -> list[str]:
    """One namespace's snapshot and Incidents, already read; returns the names of the Incidents it opened."""
    namespace, at = snap.namespace, snap.taken_at
    figures = reading.of(namespace)
    signals = service_signals(snap, figures)
    open_keys = {str((i.get("spec") or {}).get("dedupKey", "")) for i in incidents
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
        remember(snap)
    return opened


def incidents_by_namespace(cluster: Cluster, namespaces: list[str]) -> dict[str, list[Obj]]:
    """The watched namespaces' Incidents, from one cluster-wide list."""
    out: dict[str, list[Obj]] = {ns: [] for ns in namespaces}
    for inc in cluster.list_all(KIND):
        mine = out.get(str(inc["metadata"].get("namespace")))
        if mine is not None:
            mine.append(inc)
    return out


def cycle_wide(read: Callable[[], None], stop: threading.Event) -> tuple[bool, bool]:
    """One cycle from the cluster-wide lists (`read`): whether the cycle is done, and whether to read
    every namespace at once next time (not where that is refused, or a list came out of order)."""
    try:
        read()
    except ClusterError as exc:
        if exc.status == 403:
            log.info("detector: not allowed to list every namespace (%s): reading each on its own", exc)
            return False, False
        log.warning("detector: reading every namespace failed, next cycle again: %s", exc)
    except OutOfOrder as exc:  # the namespaces read so far were decided: read each on its own from now on
        log.warning("detector: %s; reading each namespace on its own from now on", exc)
        return True, False
    except Exception as exc:  # noqa: BLE001 - a reading the client could not make sense of, or a stop
        if not stop.is_set():
            log.warning("detector: reading every namespace failed, next cycle again: %r", exc)
    return True, True


def detector_loop(stop: threading.Event, cluster: Cluster, metrics: Metrics, settings: Settings,
                  remember: Remember | None = None, now: Callable[[], dt.datetime] = clock.now,
                  telemetry: Telemetry = NO_TELEMETRY) -> None:
    """Reads every watched namespace once per interval: the metrics once for all of them, the
    Kubernetes API with a few cluster-wide list calls read a page at a time (`Snapshot.read_each`),
    each namespace decided as soon as its snapshot is complete, several at a time (their writes),
    and never more than a few snapshots held at once. Where listing every namespace is refused,
    or a list came out of order, each namespace is read on its own. The next cycle starts one interval
    after the previous one started (at once if a cycle took longer: it then says it is falling
    behind), or `confirm_seconds` after it while a namespace is worth watching closely (a breach seen
    once awaits its confirming reading, a rollout or a new pod is under way; never more often than
    twice the cycle's own duration). Each cycle's duration and the namespaces it read go to `telemetry`."""
    namespaces = settings.watched()
    detectors = {ns: Detector(settings.thresholds()) for ns in namespaces}
    interval = settings.detect_interval_seconds
    cycle, took, outage, wide, pause = 0, 0.0, "", True, interval

    workers = min(8, len(namespaces)) or 1

    def one(ns: str, *, reading: MetricsReading, at: dt.datetime) -> None:
        try:
            detect_once(cluster, ns, detectors[ns], settings, reading, at, remember)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad reading
            log.warning("detector %s: %s", ns, exc)

    def one_read(snap: Snapshot, incidents: list[Obj], reading: MetricsReading) -> None:
        try:
            detect_in(cluster, snap, incidents, detectors[snap.namespace], settings, reading, remember)
        except Exception as exc:  # noqa: BLE001 - as above
            log.warning("detector %s: %s", snap.namespace, exc)

    def read_wide(pool: ThreadPoolExecutor, reading: MetricsReading, at: dt.datetime) -> None:
        """One cycle from the cluster-wide lists (their errors propagate, after the namespaces
        already read are decided; a 403 comes before any is)."""
        incidents = incidents_by_namespace(cluster, namespaces)
        slots = threading.BoundedSemaphore(2 * workers)  # snapshots read and not yet decided
        futures: list[Future[None]] = []
        try:
            for snap in Snapshot.read_each(cluster, namespaces, at):
                slots.acquire()
                futures.append(pool.submit(one_read, snap, incidents[snap.namespace], reading))
                futures[-1].add_done_callback(lambda _: slots.release())
        finally:
            wait(futures)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detect") as pool:
        while not stop.wait(max(0.0, pause - took)):
            started = time.monotonic()
            reading = metrics.read(namespaces, WINDOW)
            telemetry.metrics_source(not reading.error)
            if reading.error != outage:  # once per outage, and once when it is over
                if reading.error:
                    log.warning("Prometheus unavailable: Kubernetes signals only, nothing read as healthy: %s",
                                reading.error)
                else:
                    log.info("Prometheus answers again")
                outage = reading.error
            at = now()
            done, wide = cycle_wide(partial(read_wide, pool, reading, at), stop) if wide else (False, False)
            if stop.is_set():  # the process is stopping: its pools may be closing under the reading
                break
            if not done:
                list(pool.map(partial(one, reading=reading, at=at), namespaces))
            took = time.monotonic() - started
            watchful = any(d.watchful() for d in detectors.values())
            pause = min(interval, max(settings.confirm_seconds, 2 * took)) if watchful else interval
            cycle += 1
            telemetry.detector_cycle(took, len(namespaces))
            slow = took > interval
            level = logging.WARNING if slow else logging.INFO if cycle <= 3 or cycle % 12 == 0 else logging.DEBUG
            log.log(level, "detector cycle over %d namespaces took %.2fs%s", len(namespaces), took,
                    " (longer than the interval: falling behind)" if slow else "")
