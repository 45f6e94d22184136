"""Triage evidence, pure: what the planner is handed about one incident, from one `Snapshot` of the
namespace, the service's signals, recent log lines and traces (read by the caller): the symptoms,
each workload's revisions and rollout age, the configs that differ from the known-good record, the
Services that reach no pod, the failing and slowest traces."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..actions import revision_of
from ..domain.clock import age_seconds
from ..domain.models import (
    ChangeFacts,
    ConfigFacts,
    Evidence,
    ServiceFacts,
    Symptom,
    Target,
    TraceFacts,
    WorkloadFacts,
)
from ..domain.policy import Thresholds
from ..domain.ports import Obj
from ..domain.snapshot import SERVICE_PREFIX, Snapshot
from ..domain.topology import GATEWAY, callers_of, path_from
from ..domain.vocabulary import TargetKind
from .changes import diff, template_changes
from .detector import ServiceSignals, breaches
from .known_good import last_change as _last_change
from .known_good import service_spec
from .signals import _same_service, objects_of, service_problem, workloads_of

MAX_CONFIG_EVIDENCE = 16384  # characters of a changed config handed to the planner
LOG_LINES = 20  # per container
TRACES = 5


def symptoms_of(primary: Symptom, signals: list[ServiceSignals], thresholds: Thresholds) -> list[Symptom]:
    """The incident's own symptom first, then the service's other symptoms right now (a 502 storm is
    also slow): evidence, not incidents."""
    more = [b.as_symptom() for b in breaches(signals, thresholds)
            if b.service == primary.service and b.symptom != primary.kind]
    return [primary, *more]


def corroborated(primary: Symptom, signals: list[ServiceSignals], thresholds: Thresholds) -> bool:
    """Whether the signals show the incident's service in trouble now (any of its symptoms)."""
    return any(b.service == primary.service for b in breaches(signals, thresholds))


def workload_facts(snap: Snapshot, service: str, w: dict[str, Any]) -> WorkloadFacts:
    d = w["deployment"]
    name = d["metadata"]["name"]
    rev = revision_of(d)
    rss = snap.replica_sets_of(name)
    prev = max((revision_of(r) for r in rss if revision_of(r) < rev), default=None)
    current = next((r for r in rss if revision_of(r) == rev), None)
    previous = next((r for r in rss if revision_of(r) == prev), None)
    changed = bool(current and previous and template_changes(name, current["spec"]["template"],
                                                               previous["spec"]["template"]))
    rolled = age_seconds(current["metadata"].get("creationTimestamp"), snap.taken_at) if current else None
    vols = d["spec"]["template"]["spec"].get("volumes") or []
    return WorkloadFacts(service=service, deployment=name, desired=w["desired"], ready=w["ready"],
                         restarts=w["restarts"], revision=rev, previous_revision=prev, rolled_out_seconds_ago=rolled,
                         crash_looping=w["crash_looping"], oom_killed=w["oom_killed"],
                         config_maps=[v["configMap"]["name"] for v in vols if v.get("configMap")],
                         known_good_replicas=snap.known_good_replicas(name),
                         healthy_revision=healthy_revision(snap, d),
                         healthy_copy=snap.known_good_object("Deployment", name) is not None,
                         rollout_changed=changed)


def healthy_revision(snap: Snapshot, deployment: Obj) -> int | None:
    """The newest revision whose pod template is the one last seen healthy, when the Deployment's
    current template is not (a bad edit, whoever made it, is undone by rolling back to it)."""
    name = deployment["metadata"]["name"]
    good = snap.known_good_object("Deployment", name)
    good_template = ((good or {}).get("spec") or {}).get("template")
    if not good_template or not template_changes(name, deployment["spec"]["template"], good_template):
        return None
    current = revision_of(deployment)
    fits = [revision_of(r) for r in snap.replica_sets_of(name)
            if revision_of(r) != current and not template_changes(name, r["spec"]["template"], good_template)]
    return max(fits, default=None)


def changes_since_healthy(snap: Snapshot, service: str) -> list[ChangeFacts]:
    """What differs from the last healthy copies along the service's path (its own and its
    dependencies' Deployments and Services, and the ConfigMaps those Deployments mount)."""
    out: list[ChangeFacts] = []
    for name in path_from(service):
        dep = snap.get("Deployment", name) or snap.known_good_object("Deployment", name) or {}
        vols = ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
        objects = [("Deployment", name), ("Service", name),
                   *(("ConfigMap", v["configMap"]["name"]) for v in vols if (v.get("configMap") or {}).get("name"))]
        for kind, obj in objects:
            out.extend(ChangeFacts(kind=TargetKind(c.kind), name=c.name, field=c.field, before=c.before,
                                   after=c.after, missing=c.missing)
                       for c in diff(kind, obj, snap.get(kind, obj), snap.known_good_object(kind, obj)))
    return out


def config_facts(snap: Snapshot, names: Iterable[str]) -> list[ConfigFacts]:
    out = []
    for name in sorted(set(names)):
        cm = snap.get("ConfigMap", name)
        if cm is None:
            continue
        good = snap.known_good_config(name)
        for key, value in (cm.get("data") or {}).items():
            kg = good.get(key)
            differs = kg is not None and kg != value
            out.append(ConfigFacts(name=name, changed_seconds_ago=age_seconds(_last_change(cm), snap.taken_at),
                                   differs_from_known_good=differs, known_good_key=key if kg is not None else None,
                                   value=value[:MAX_CONFIG_EVIDENCE] if differs else None,
                                   known_good_value=kg[:MAX_CONFIG_EVIDENCE] if kg is not None and differs else None))
    return out


def service_facts(snap: Snapshot) -> list[ServiceFacts]:
    pods = snap.of("Pod")
    out = []
    for sv in snap.of("Service"):
        name, spec = sv["metadata"]["name"], service_spec(sv)
        raw = snap.known_good.get(f"{SERVICE_PREFIX}{name}")
        kg = json.loads(raw) if raw else None
        differs = kg is not None and not _same_service(spec, kg)
        out.append(ServiceFacts(
            name=name, selector=spec["selector"], target_ports=[str(p.get("targetPort")) for p in spec["ports"]],
            problem=service_problem(sv, pods), changed_seconds_ago=age_seconds(_last_change(sv), snap.taken_at),
            differs_from_known_good=differs, known_good_selector=kg["selector"] if kg and differs else None,
            known_good_target_ports=[str(p.get("targetPort")) for p in kg["ports"]] if kg and differs else None))
    return out


def trace_sources(service: str) -> list[str]:
    """Whose traces to read: the service's own and its callers' (a service that gets no requests,
    or the gateway, which exports none, shows up in its callers' failed spans)."""
    if service == GATEWAY:
        return ["order", "product", "payment"]
    return [service, *(c for c in callers_of(service) if c != GATEWAY)]


def rank_traces(traces: Iterable[TraceFacts], limit: int = TRACES) -> list[TraceFacts]:
    """Each trace once, the ones with most failed spans first, then the slowest."""
    found: dict[str, TraceFacts] = {}
    for t in traces:
        found.setdefault(t.trace_id, t)
    return sorted(found.values(), key=lambda f: (-len(f.failed_spans), -f.duration_ms))[:limit]


def evidence(snap: Snapshot, symptoms: list[Symptom], logs: list[str], traces: list[TraceFacts],
             confirmed: bool = True) -> Evidence:
    work = workloads_of(objects_of(snap), snap.taken_at)
    facts = [workload_facts(snap, svc, w) for svc, w in sorted(work.items())]
    return Evidence(symptoms=symptoms, workloads=facts,
                    configs=config_facts(snap, (c for f in facts for c in f.config_maps)),
                    services=service_facts(snap), traces=rank_traces(traces), log_lines=logs[-2 * LOG_LINES:],
                    missing=[Target(kind=TargetKind(kind), name=name) for kind, name in snap.missing()],
                    changes=changes_since_healthy(snap, symptoms[0].service) if symptoms else [],
                    corroborated=confirmed)
