"""What the operator sees, read from Prometheus (HTTP API, via prometheus-api-client) and the
Kubernetes API: per-service SLO signals for the detector and the validation oracle, and the
evidence triage hands to the planner (workload and config facts, recent log lines).

Missing data stays missing (None, `complete=False`): a Prometheus that does not answer is never
read as a healthy shop."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from ..actions import revision_of
from ..adapters.kube import Kube
from ..adapters.prometheus import (
    WINDOW,
    PrometheusUnavailable,
    PromSnapshot,
    fetch_signals,
    prometheus_client,
)
from ..adapters.traces import TraceReader
from ..domain.clock import age_seconds as _age_seconds
from ..domain.clock import now as clock_now
from ..domain.clock import parse_duration
from ..domain.models import ConfigFacts, Evidence, Health, ServiceFacts, Symptom, TraceFacts, WorkloadFacts
from ..domain.topology import MANAGED_BY, NAME_LABEL, PART_OF, PART_OF_SELECTOR, callers_of
from . import known_good as good_record
from .detector import ServiceSignals
from .known_good import last_change as _last_change
from .known_good import service_spec

log = logging.getLogger("sre_operator.signals")
KNOWN_GOOD = "sre-operator-known-good"
MIN_REQUESTS = 8  # requests in a window below which its figures are not evidence
REPLICAS_PREFIX = "_replicas."  # known-good replica counts, next to the configs
SERVICE_PREFIX = "_service."  # known-good Service selectors and ports (JSON)
MAX_CONFIG_EVIDENCE = 16384  # characters of a changed config handed to the planner


@dataclass
class Reader:
    kube: Kube
    namespace: str
    prometheus_url: str
    timeout: float = 5.0
    traces: TraceReader | None = None  # a Jaeger query API: failing and slow traces as evidence
    snapshot: "PromSnapshot | None" = None  # the detector's one reading of every namespace this cycle

    def __post_init__(self) -> None:
        self.prom = prometheus_client(self.prometheus_url, self.timeout)

    # -- Prometheus -------------------------------------------------------------------------

    def prometheus_signals(self, window: str = WINDOW) -> dict[str, dict[str, float]]:
        """Per service of this namespace: rate, error ratio, P95, scrape up, unrouted ratio (the
        gateway), pool saturation. From the cycle's snapshot when the detector took one."""
        if self.snapshot is not None and window == self.snapshot.window:
            if self.snapshot.error:
                raise PrometheusUnavailable(self.snapshot.error)
            return self.snapshot.by_namespace.get(self.namespace, {"gateway": {"rate": 0.0, "error_ratio": 0.0}})
        return fetch_signals(self.prom, self.prometheus_url, [self.namespace], window, self.timeout)[self.namespace]

    # -- Kubernetes -------------------------------------------------------------------------

    def objects(self) -> tuple[list[dict], list[dict], list[dict]]:
        """The shop's Deployments, pods and Services as the API has them now."""
        return (self.kube.list("Deployment", self.namespace, PART_OF),
                self.kube.list_pods(self.namespace, PART_OF_SELECTOR),
                self.kube.list("Service", self.namespace, PART_OF))

    def workloads(self, objects: tuple[list[dict], list[dict], list[dict]] | None = None) -> dict[str, dict]:
        """Per service: desired/ready replicas, restarts, crash loops, OOM kills, rollout state,
        pod ages, and why its Service reaches no pod. `objects`: lists already read (`objects()`)."""
        deps, pods, services = objects or self.objects()
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
            out[svc] = {
                "deployment": d, "desired": spec.get("replicas", 1), "ready": st.get("readyReplicas", 0),
                "restarts": sum(c.get("restartCount", 0) for c in statuses),
                "crash_looping": any((c.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                                     for c in statuses),
                "oom_killed": any((c.get("lastState", {}).get("terminated") or {}).get("reason") == "OOMKilled"
                                  and c.get("restartCount", 0) >= 2 for c in statuses),
                "rolling_out": rolling,
                "endpoints_problem": problems.get(svc) if spec.get("replicas", 1) and any(_ready(p) for p in mine)
                else None,
                "newest_pod_seconds": min((_age_seconds(p["metadata"].get("creationTimestamp")) or 0.0
                                           for p in mine if not p["metadata"].get("deletionTimestamp")),
                                          default=None),
                "stuck_pod_seconds": max((_age_seconds(p["metadata"].get("creationTimestamp")) or 0.0
                                          for p in mine if not p["metadata"].get("deletionTimestamp")
                                          and not _ready(p)), default=None),
            }
        return out

    def read(self, window: str = WINDOW,
             objects: tuple[list[dict], list[dict], list[dict]] | None = None) -> tuple[list[ServiceSignals], bool]:
        """Signals per service, and whether Prometheus answered (False: only Kubernetes facts).
        `objects`: the Kubernetes lists to judge (read now when not given)."""
        try:
            prom, complete = self.prometheus_signals(window), True
        except PrometheusUnavailable as exc:
            if self.snapshot is None:  # the detector reports a failed snapshot once per outage
                log.warning("%s", exc)
            prom, complete = {}, False
        work = self.workloads(objects)
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
                unrouted_route=p.get("unrouted_route"), saturation=p.get("saturation"),
                waiting=p.get("waiting")))
        return out, complete

    def health(self, service: str, window: str = WINDOW) -> Health:
        """`window`: the rate window; validation uses the time since mitigation, so the outage
        before it does not linger in the figures."""
        signals, complete = self.read(window)
        s = next((x for x in signals if x.service == service), None)
        if s is None:
            return Health(complete=False)
        # A verdict needs enough requests in the window: a quantile or a ratio over two requests
        # (or none, when callers stopped sending) says nothing, and must not read as healthy.
        seconds = parse_window(window)
        enough = s.request_rate is not None and s.request_rate * seconds >= MIN_REQUESTS
        return Health(errorRatio=s.error_ratio, p95Seconds=s.p95_seconds, requestRate=s.request_rate,
                      readyReplicas=s.ready, desiredReplicas=s.desired, restarts=s.restarts,
                      scrapeUp=s.scrape_up, complete=complete and enough)

    # -- triage evidence --------------------------------------------------------------------

    def workload_facts(self, service: str, w: dict, good: dict[str, str]) -> WorkloadFacts:
        """`good`: the known-good record, read once for all workloads."""
        d = w["deployment"]
        rev = revision_of(d)
        rss = self.kube.list_replica_sets(self.namespace, d["metadata"]["name"])
        prev = max((revision_of(r) for r in rss if revision_of(r) < rev), default=None)
        current = next((r for r in rss if revision_of(r) == rev), None)
        rolled = _age_seconds(current["metadata"].get("creationTimestamp")) if current else None
        vols = d["spec"]["template"]["spec"].get("volumes") or []
        replicas = good.get(f"{REPLICAS_PREFIX}{d['metadata']['name']}")
        return WorkloadFacts(knownGoodReplicas=int(replicas) if replicas and replicas.isdigit() else None,service=service, deployment=d["metadata"]["name"], desired=w["desired"], ready=w["ready"],
                             restarts=w["restarts"], revision=rev, previousRevision=prev, rolledOutSecondsAgo=rolled,
                             crashLooping=w["crash_looping"], oomKilled=w["oom_killed"],
                             configMaps=[v["configMap"]["name"] for v in vols if v.get("configMap")])

    def known_good(self) -> dict[str, str]:
        cm = self.kube.get("ConfigMap", self.namespace, KNOWN_GOOD)
        return dict((cm or {}).get("data") or {})

    def remember_known_good(self, min_age_seconds: float = good_record.MIN_AGE_SECONDS,
                            objects: tuple[list[dict], list[dict], list[dict]] | None = None) -> None:
        """Record the shop's configs, replica counts, Service specs and object copies while it is
        healthy (`detection.known_good` decides what; this reads and writes)."""
        known = self.known_good()
        deployments, pods, services = objects or self.objects()
        unreachable = {sv["metadata"]["name"] for sv in services if service_problem(sv, pods)}
        data = good_record.remember(known, config_maps=self.kube.list("ConfigMap", self.namespace, PART_OF),
                                    deployments=deployments, services=services, unreachable=unreachable,
                                    now=clock_now(), min_age_seconds=min_age_seconds)
        if data and data != known:
            self.kube.upsert_config_map(self.namespace, KNOWN_GOOD, data,
                                        labels=MANAGED_BY)

    def config_facts(self, names: list[str], good: dict[str, str]) -> list[ConfigFacts]:
        out = []
        for name in sorted(set(names)):
            cm = self.kube.get("ConfigMap", self.namespace, name)
            if cm is None:
                continue
            for key, value in (cm.get("data") or {}).items():
                kg = good.get(f"{name}.{key}")
                differs = kg is not None and kg != value
                out.append(ConfigFacts(name=name, changedSecondsAgo=_age_seconds(_last_change(cm)),
                                       differsFromKnownGood=differs, knownGoodKey=key if kg is not None else None,
                                       value=value[:MAX_CONFIG_EVIDENCE] if differs else None,
                                       knownGoodValue=kg[:MAX_CONFIG_EVIDENCE] if differs else None))
        return out

    def service_facts(self, good: dict[str, str],
                      objects: tuple[list[dict], list[dict], list[dict]] | None = None) -> list[ServiceFacts]:
        _, pods, services = objects or self.objects()
        out = []
        for sv in services:
            name, spec = sv["metadata"]["name"], service_spec(sv)
            kg = json.loads(good[f"{SERVICE_PREFIX}{name}"]) if f"{SERVICE_PREFIX}{name}" in good else None
            differs = kg is not None and not _same_service(spec, kg)
            out.append(ServiceFacts(
                name=name, selector=spec["selector"], targetPorts=[str(p.get("targetPort")) for p in spec["ports"]],
                problem=service_problem(sv, pods), changedSecondsAgo=_age_seconds(_last_change(sv)),
                differsFromKnownGood=differs, knownGoodSelector=kg["selector"] if differs else None,
                knownGoodTargetPorts=[str(p.get("targetPort")) for p in kg["ports"]] if differs else None))
        return out

    def known_good_service(self, name: str) -> dict | None:
        raw = self.known_good().get(f"{SERVICE_PREFIX}{name}")
        return json.loads(raw) if raw else None

    def evidence(self, symptoms: list[Symptom], log_lines: int = 20) -> Evidence:
        objects = self.objects()  # one read of the shop's objects for the workload and Service facts
        work = self.workloads(objects)
        good = self.known_good()
        facts = [self.workload_facts(svc, w, good) for svc, w in sorted(work.items())]
        configs = self.config_facts([c for f in facts for c in f.config_maps], good)
        services = self.service_facts(good, objects)
        traces = self.trace_facts(symptoms[0].service) if symptoms else []
        logs = []
        for s in symptoms[:2]:
            logs += self.kube.recent_logs(self.namespace, f"{NAME_LABEL}={s.service}", log_lines)
        return Evidence(symptoms=symptoms, workloads=facts, configs=configs, services=services, traces=traces,
                        logLines=logs[-2 * log_lines:])

    def trace_facts(self, service: str, limit: int = 5) -> list[TraceFacts]:
        """The service's own recent traces and its callers' (a service that gets no requests, or
        the gateway, which exports none, shows up in its callers' failed spans)."""
        if self.traces is None:
            return []
        callers = [c for c in callers_of(service) if c != "gateway"]
        found: dict[str, TraceFacts] = {}
        for name in [service, *callers] if service != "gateway" else ["order", "product", "payment"]:
            for t in self.traces.evidence(name, limit):
                found.setdefault(t.trace_id, t)
        ranked = sorted(found.values(), key=lambda f: (-len(f.failed_spans), -f.duration_ms))
        return ranked[:limit]


def parse_window(window: str) -> float:
    """A PromQL duration of ours (`1m`, `41s`) in seconds."""
    return parse_duration(window)


def _same_service(a: dict, b: dict) -> bool:
    def norm(spec: dict) -> tuple:
        return (sorted(spec["selector"].items()),
                sorted((p.get("name", ""), p.get("port"), str(p.get("targetPort", p.get("port")))) for p in spec["ports"]))
    return norm(a) == norm(b)


def service_problem(sv: dict, pods: list[dict]) -> str | None:
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


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
