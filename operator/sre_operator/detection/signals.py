"""What the operator sees, as pure functions of one `Snapshot` of a namespace and one metrics
reading: per-service SLO signals for the detector and the validation oracle (`service_signals`,
`health_of`), and the facts about workloads and Services they are built from. The triage evidence
is `detection/evidence.py`.

Missing data stays missing (None, `complete=False`): a Prometheus that does not answer is never
read as a healthy shop. `Reader` is the I/O left around them: the dashboard's health reads and the
known-good record's writes."""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..domain.clock import age_seconds, now, parse_duration
from ..domain.metrics import ServiceFigures
from ..domain.models import Health
from ..domain.ports import Cluster, Obj, upsert_config_map
from ..domain.snapshot import Snapshot
from ..domain.topology import MANAGED_BY, NAME_LABEL, PART_OF
from . import known_good as good_record
from . import pod_states
from .detector import ServiceSignals

log = logging.getLogger("sre_operator.signals")
KNOWN_GOOD = "sre-operator-known-good"
MIN_REQUESTS = 8  # requests in a window below which its figures are not evidence
REPLICAS_PREFIX = "_replicas."  # known-good replica counts, next to the configs
SERVICE_PREFIX = "_service."  # known-good Service selectors and ports (JSON)


Objects = tuple[list[Obj], list[Obj], list[Obj]]  # Deployments, pods, Services


def workloads_of(objects: Objects, at: dt.datetime) -> dict[str, dict[str, Any]]:
    """Per service: desired/ready replicas, restarts, crash loops, OOM kills, rollout state, pod
    ages at `at`, and why its Service reaches no pod."""
    deps, pods, services = objects
    problems = {sv["metadata"].get("labels", {}).get(NAME_LABEL, sv["metadata"]["name"]): service_problem(sv, pods)
                for sv in services}
    out = {}
    for d in deps:
        svc = d["metadata"]["labels"].get(NAME_LABEL, d["metadata"]["name"])
        st, spec = d.get("status", {}), d["spec"]
        mine = [p for p in pods if p["metadata"].get("labels", {}).get(NAME_LABEL) == svc]
        statuses = [c for p in mine for c in p.get("status", {}).get("containerStatuses") or []]
        rolling = (st.get("observedGeneration", 0) < d["metadata"].get("generation", 0)
                   or st.get("updatedReplicas", 0) < spec.get("replicas", 1)
                   or st.get("replicas", 0) > spec.get("replicas", 1))
        live = [p for p in mine if not p["metadata"].get("deletionTimestamp")]
        states = pod_states.read(mine, at)
        out[svc] = {
            "never_starting": states.never_starting[0] if states.never_starting else None,
            "deployment": d, "desired": spec.get("replicas", 1), "ready": st.get("readyReplicas", 0),
            "restarts": sum(c.get("restartCount", 0) for c in statuses),
            "crash_looping": any((c.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                                 for c in statuses),
            "oom_killed": any((c.get("lastState", {}).get("terminated") or {}).get("reason") == "OOMKilled"
                              and c.get("restartCount", 0) >= 2 for c in statuses),
            "rolling_out": rolling,
            "endpoints_problem": problems.get(svc) if spec.get("replicas", 1) and any(_ready(p) for p in mine)
            else None,
            "newest_pod_seconds": min((_serving_seconds(p, at) for p in live), default=None),
            "stuck_pod_seconds": max((age_seconds(p["metadata"].get("creationTimestamp"), at) or 0.0
                                      for p in live if not _ready(p)), default=None),
        }
    return out


def objects_of(snap: Snapshot) -> Objects:
    return snap.of("Deployment"), snap.of("Pod"), snap.of("Service")


def service_signals(snap: Snapshot, figures: ServiceFigures | None) -> list[ServiceSignals]:
    """Signals per service from one snapshot and one metrics reading of its namespace (`figures`
    None: the metrics source did not answer, so only the Kubernetes facts are known)."""
    prom = figures or {}
    work = workloads_of(objects_of(snap), snap.taken_at)
    gone = missing_objects(snap)
    out = []
    for svc in sorted(set(prom) | set(work)):
        p, w = prom.get(svc, {}), work.get(svc, {})
        if not w and svc != "gateway":
            continue  # not a workload of this shop
        up = p.get("up")
        out.append(ServiceSignals(
            service=svc, error_ratio=p.get("error_ratio"), p95_seconds=p.get("p95"), request_rate=p.get("rate"),
            scrape_up=None if up is None else up >= 1, desired=w.get("desired"), ready=w.get("ready"),
            restarts=w.get("restarts"), crash_looping=w.get("crash_looping", False),
            oom_killed=w.get("oom_killed", False), rolling_out=w.get("rolling_out", False),
            stuck_pod_seconds=w.get("stuck_pod_seconds"), newest_pod_seconds=w.get("newest_pod_seconds"),
            endpoints_problem=w.get("endpoints_problem"), unrouted_ratio=p.get("unrouted_ratio"),
            unrouted_route=p.get("unrouted_route"), route_error_ratio=p.get("route_error_ratio"),
            route_error_route=p.get("route_error_route"), route_rate=p.get("route_rate"),
            saturation=p.get("saturation"),
            waiting=p.get("waiting"), cpu_throttled=p.get("cpu_throttled"), orders_rate=p.get("orders_rate"),
            orders_failed_ratio=p.get("orders_failed_ratio"), never_starting=w.get("never_starting"),
            missing=gone.pop(svc, None)))
    # Workloads seen healthy whose Deployment no longer exists: nothing left to read but their absence.
    out += [ServiceSignals(service=svc, missing=why) for svc, why in sorted(gone.items())]
    return out


def missing_objects(snap: Snapshot) -> dict[str, str]:
    """Per service: its Deployment or Service, seen healthy (a copy is on record), that no longer exists."""
    out: dict[str, str] = {}
    for kind, name in snap.missing(("Deployment", "Service")):
        copy = snap.known_good_object(kind, name) or {}
        svc = (copy.get("metadata", {}).get("labels") or {}).get(NAME_LABEL, name)
        out.setdefault(svc, f"{kind} {name} no longer exists (it did when last seen healthy)")
    return out


def health_of(signals: list[ServiceSignals], service: str, window: str, complete: bool) -> Health:
    """One service's figures as validation compares them. `window`: the rate window the figures
    cover; `complete`: the metrics source answered. A verdict needs enough requests in the window:
    a quantile or a ratio over two requests (or none, when callers stopped sending) says nothing,
    and must not read as healthy."""
    s = next((x for x in signals if x.service == service), None)
    if s is None:
        return Health(complete=False)
    enough = s.request_rate is not None and s.request_rate * parse_window(window) >= MIN_REQUESTS
    return Health(error_ratio=s.error_ratio, p95_seconds=s.p95_seconds, request_rate=s.request_rate,
                  ready_replicas=s.ready, desired_replicas=s.desired, restarts=s.restarts,
                  scrape_up=s.scrape_up, complete=complete and enough)


@dataclass
class Reader:
    """The dashboard's workload reads and the known-good record's writes, through the `Cluster`
    port (the I/O around the pure functions above)."""
    cluster: Cluster
    namespace: str

    def objects(self) -> Objects:
        """The shop's Deployments, pods and Services as the API has them now."""
        return (self.cluster.list_objects("Deployment", self.namespace, PART_OF),
                self.cluster.list_objects("Pod", self.namespace, PART_OF),
                self.cluster.list_objects("Service", self.namespace, PART_OF))

    def workloads(self, objects: Objects | None = None) -> dict[str, dict[str, Any]]:
        """`workloads_of` the lists read now (or `objects`, already read)."""
        return workloads_of(objects or self.objects(), now())

    def known_good(self) -> dict[str, str]:
        cm = self.cluster.get("ConfigMap", self.namespace, KNOWN_GOOD)
        return dict((cm or {}).get("data") or {})

    def remember_known_good(self, min_age_seconds: float = good_record.MIN_AGE_SECONDS,
                            snapshot: Snapshot | None = None, up_to_date: UpToDate | None = None) -> None:
        """Record the shop's configs, replica counts, Service specs and object copies while it is
        healthy (`detection.known_good` decides what; this reads, unless given the detector's
        `snapshot` of the namespace, and writes only a change). With `up_to_date`, a snapshot
        whose record was found up to date from the same inputs before is not derived again."""
        if snapshot is None:
            version, known, (deployments, pods, services) = None, self.known_good(), self.objects()
            config_maps = self.cluster.list_objects("ConfigMap", self.namespace, PART_OF)
        else:
            version, known = snapshot.known_good_version, dict(snapshot.known_good)
            (deployments, pods, services), config_maps = objects_of(snapshot), snapshot.of("ConfigMap")
        unreachable = {sv["metadata"]["name"] for sv in services if service_problem(sv, pods)}
        at = now()
        key = None if up_to_date is None or snapshot is None else good_record.inputs(
            version, known, config_maps=config_maps, deployments=deployments, services=services,
            unreachable=unreachable, min_age_seconds=min_age_seconds)
        if up_to_date is not None and up_to_date.holds(self.namespace, key, at):
            return
        data = good_record.remember(known, config_maps=config_maps, deployments=deployments, services=services,
                                    unreachable=unreachable, now=at, min_age_seconds=min_age_seconds)
        if data and data != known:
            upsert_config_map(self.cluster, self.namespace, KNOWN_GOOD, data, labels=MANAGED_BY)
        elif up_to_date is not None and good_record.settled([*config_maps, *deployments, *services], at,
                                                             min_age_seconds):
            up_to_date.found(self.namespace, key, at)

    def known_good_service(self, name: str) -> dict[str, Any] | None:
        raw = self.known_good().get(f"{SERVICE_PREFIX}{name}")
        return json.loads(raw) if raw else None


@dataclass
class UpToDate:
    """The namespaces whose known-good record was last found up to date, from which inputs
    (`known_good.inputs`) and when. The same inputs read again need no new derivation (every
    object's deep copy and JSON, each namespace each cycle): `remember` would decide the same,
    unless an object was too new to vouch for then (such a finding is not kept) or the clock went back."""
    _found: dict[str, tuple[Hashable, dt.datetime]] = field(default_factory=dict)

    def holds(self, namespace: str, key: Hashable | None, at: dt.datetime) -> bool:
        found = self._found.get(namespace)
        return key is not None and found is not None and found[0] == key and at >= found[1]

    def found(self, namespace: str, key: Hashable | None, at: dt.datetime) -> None:
        if key is None:
            self._found.pop(namespace, None)
        else:
            self._found[namespace] = (key, at)


def remembering(cluster: Cluster) -> Callable[[Snapshot], None]:
    """What the operator gives the detector loop to record a healthy namespace's snapshot as
    known-good: `Reader.remember_known_good`, skipping the namespaces found up to date from the
    same inputs (one `UpToDate` for the loop's life)."""
    up_to_date = UpToDate()

    def remember(snap: Snapshot) -> None:
        Reader(cluster, snap.namespace).remember_known_good(snapshot=snap, up_to_date=up_to_date)
    return remember


def parse_window(window: str) -> float:
    """A PromQL duration of ours (`1m`, `41s`) in seconds."""
    return parse_duration(window)


def _same_service(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(spec: dict[str, Any]) -> tuple[Any, ...]:
        return (sorted(spec["selector"].items()),
                sorted((p.get("name", ""), p.get("port"), str(p.get("targetPort", p.get("port"))))
                       for p in spec["ports"]))
    return norm(a) == norm(b)


def service_problem(sv: Obj, pods: list[Obj]) -> str | None:
    """Why a Service reaches none of its pods: a selector no pod matches, or target ports that no
    container of the selected pods declares. None when it reaches them (or selects nothing by design)."""
    name, spec = sv["metadata"]["name"], sv["spec"]
    selector = spec.get("selector") or {}
    if not selector:
        return None  # a Service without selector has its endpoints managed by hand
    chosen = [p for p in pods if not p["metadata"].get("deletionTimestamp")
              and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
    if not chosen:
        # Only a problem when the pods it is meant for exist (a workload scaled to 0 has none to reach).
        meant = (sv["metadata"].get("labels") or {}).get(NAME_LABEL, name)
        if not any((p["metadata"].get("labels") or {}).get(NAME_LABEL) == meant for p in pods):
            return None
        shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return f"Service {name} selects no pod (selector {shown})"
    declared = {str(cp.get(k)) for p in chosen for c in p["spec"].get("containers") or []
                for cp in c.get("ports") or [] for k in ("name", "containerPort") if cp.get(k) is not None}
    if not declared:
        return None  # pods that declare no port: a numeric target port may still be right
    for port in spec.get("ports") or []:
        target = str(port.get("targetPort", port.get("port")))
        if target not in declared:
            return f"Service {name} port {port.get('port')} targets {target}, which no container of its pods declares"
    return None


def _serving_seconds(pod: Obj, at: dt.datetime) -> float:
    """How long the pod's figures have been coming in: since it became Ready (a pod that took a minute
    to start has served for seconds, and the rate window still mixes in its predecessor's requests),
    else since it was created."""
    since = next((c.get("lastTransitionTime") for c in (pod.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready" and c.get("status") == "True"), None)
    return age_seconds(since or pod["metadata"].get("creationTimestamp"), at) or 0.0


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
