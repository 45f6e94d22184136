"""The deterministic, rule-based planner: from evidence (symptoms, workload and config facts) to a
MitigationPlan. It reasons from what an SRE would see, never from a scenario's name:

The rule of thumb: the smallest change that returns the faulty object to its last healthy state,
and nothing on a workload that is not the root cause.

1. a ConfigMap the affected service mounts differs from the last version seen healthy → put the
   known-good version back (and the rollout that loads it);
2. the affected Deployment's pod template differs from the one last seen healthy (whoever changed
   it: a deploy, `kubectl edit`, `set image`, a patch) and it is broken, failing or slow → roll
   back to the revision that has the healthy template; with no healthy copy on record, a recent
   rollout followed by trouble → roll back to the previous revision (throttling by a lowered CPU
   limit is such trouble);
   A service slow or failing whose own template is as healthy while a dependency on its path has a
   changed one → roll the dependency back (errors and latency travel up the call chain), and never
   scale the caller for it;
3. OOM kills → roll back if it rolled out recently, else restart (and say a limit may be too low);
4. saturation (its database pool busy with queries waiting, or its CPU limit throttling it) with
   nothing changed → scale out: double the replicas (the most a step of the HorizontalPodAutoscaler
   adds), at most 10 (a limit lowered by an edit is rule 2's: the template changed);
5. nothing on the affected path changed since it was last healthy, and the service crashes, is not
   ready, fails or is slow → a process gone bad at runtime: restart it (rollout restart); slowness
   that a restart did not cure → scale out.
0. (before all) the Deployment or Service of the affected service, or of a service it depends on,
   was deleted and a healthy copy is on record → recreate it (a ConfigMap one of them reads: recreate
   it and roll its readers); a Deployment scaled to 0 → scale it
   back to its known-good replica count; a Service that reaches none of its pods and differs from
   the version last seen healthy → restore its selector and ports.
Attempt N > 1 skips the rules that already failed (their actions are in `tried`)."""
from __future__ import annotations

from ..domain.models import Action, ChangeFacts, Evidence, MitigationPlan, Target, WorkloadFacts
from ..domain.topology import path_from
from ..domain.vocabulary import TRAVELLING, ActionType, SymptomKind, TargetKind

RECENT_SECONDS = 900.0  # a change this recent is a suspect
MAX_SCALE_OUT = 10


def _recent(seconds: float | None) -> bool:
    return seconds is not None and seconds <= RECENT_SECONDS


def _deployment(name: str) -> Target:
    return Target(kind=TargetKind.DEPLOYMENT, name=name)


def _restart(deployment: str, cause: str, confidence: float, effect: str, reason: str) -> MitigationPlan:
    """A rollout restart of one Deployment: fresh pods from the same template."""
    return MitigationPlan(root_cause=cause, confidence=confidence, expected_effect=effect,
                          actions=[Action(type=ActionType.ROLLOUT_RESTART, target=_deployment(deployment),
                                          reason=reason)])


def _workload(ev: Evidence, service: str) -> WorkloadFacts | None:
    return next((w for w in ev.workloads if w.service == service), None)


def _recreate(ev: Evidence, service: str) -> list[MitigationPlan]:
    """0. A Deployment or Service on the affected path, seen healthy and now gone: create it again
    from its last healthy copy (both, when both are gone); a ConfigMap a workload on the path reads,
    likewise, with its readers rolled."""
    gone: dict[str, list[TargetKind]] = {}
    for t in ev.missing:
        if t.kind in (TargetKind.DEPLOYMENT, TargetKind.SERVICE) and t.name in path_from(service):
            gone.setdefault(t.name, []).append(TargetKind(t.kind))
    plans = [MitigationPlan(
        root_cause=f"the {' and '.join(kinds)} of {name} {'was' if len(kinds) == 1 else 'were'} deleted"
                   + (f"; {service} depends on {name}" if name != service else ""),
        confidence=0.9, expected_effect=f"{name} is back as it was last seen healthy",
        actions=[Action(type=ActionType.RECREATE, target=Target(kind=kind, name=name),
                        reason="deleted; recreated from its last healthy copy") for kind in kinds])
        for name, kinds in sorted(gone.items())]
    # A ConfigMap a workload on the path reads, seen healthy and gone: back from its copy, and its
    # readers rolled (a pod cannot start without it, or runs with what it read before).
    on_path = [w for w in ev.workloads if w.service in path_from(service)]
    for t in ev.missing:
        readers = [w for w in on_path if t.kind == TargetKind.CONFIG_MAP and t.name in w.config_maps]
        if readers:
            plans.append(MitigationPlan(
                root_cause=f"ConfigMap {t.name} was deleted; {', '.join(w.deployment for w in readers)} read it",
                confidence=0.9, expected_effect=f"{t.name} is back as it was last seen healthy",
                actions=[Action(type=ActionType.RECREATE, target=Target(kind=TargetKind.CONFIG_MAP, name=t.name),
                                reason="deleted; recreated from its last healthy copy"),
                         *(Action(type=ActionType.ROLLOUT_RESTART, target=_deployment(w.deployment),
                                  reason=f"{w.deployment} reads {t.name} at start") for w in readers)]))
    return plans


def _restore_services(ev: Evidence) -> list[MitigationPlan]:
    """0. A Service that no longer reaches its pods, changed since it was last seen healthy."""
    return [MitigationPlan(
        root_cause=f"{sv.problem}; its selector or ports changed since it was last seen healthy",
        confidence=0.9, expected_effect=f"service/{sv.name} reaches its pods again",
        actions=[Action(type=ActionType.RESTORE_SERVICE, target=Target(kind=TargetKind.SERVICE, name=sv.name),
                        reason="put back the selector and ports last seen healthy")])
        for sv in ev.services if sv.problem and sv.differs_from_known_good]


def _restore_configs(ev: Evidence) -> list[MitigationPlan]:
    """1. A config that differs from the last known-good one: put it back, and roll its readers."""
    primary = ev.symptoms[0]
    out = []
    for cfg in ev.configs:
        if cfg.differs_from_known_good and cfg.known_good_key:
            users = [x for x in ev.workloads if cfg.name in x.config_maps]
            acts = [Action(type=ActionType.PATCH_CONFIGMAP,
                           target=Target(kind=TargetKind.CONFIG_MAP, name=cfg.name),
                           reason=f"{cfg.name} differs from the version last seen healthy")]
            acts += [Action(type=ActionType.ROLLOUT_RESTART, target=_deployment(u.deployment),
                            reason=f"{u.deployment} reads {cfg.name} at start") for u in users]
            out.append(MitigationPlan(
                root_cause=f"a recent change to ConfigMap {cfg.name} broke {primary.service} ({primary.signal})",
                confidence=0.85, expected_effect=f"{primary.service} serves with its known-good config again",
                actions=acts))
    return out


def _template_edits(ev: Evidence, deployment: str) -> list[ChangeFacts]:
    """What changed in the Deployment's pod template since it was last seen healthy."""
    return [c for c in ev.changes if c.kind == TargetKind.DEPLOYMENT and c.name == deployment
            and c.field.startswith("spec.template")]


def _rollback_dependencies(ev: Evidence, service: str, kinds: set[SymptomKind]) -> list[MitigationPlan]:
    """2''. Errors or latency travel up the call chain: a dependency on the service's path whose pod
    template changed since it was last seen healthy is the suspect, not the service that shows them."""
    if not kinds & TRAVELLING or not ev.corroborated:
        return []
    return [MitigationPlan(
        root_cause=f"{service} shows {', '.join(sorted(kinds & TRAVELLING))}, and {w.deployment}, which it calls, "
                   f"changed since it was last seen healthy ({', '.join(c.field for c in edits[:3])})",
        confidence=0.7, expected_effect=f"{w.deployment} back on revision {w.healthy_revision}, the template "
                                        f"last seen healthy; {service} recovers with it",
        actions=[Action(type=ActionType.ROLLBACK, target=_deployment(w.deployment), revision=w.healthy_revision,
                        reason=f"a dependency of {service} changed since healthy")])
        for w in ev.workloads
        if w.service != service and w.service in path_from(service) and w.healthy_revision is not None
        and (edits := _template_edits(ev, w.deployment))]


def plan(ev: Evidence, tried: set[str] | None = None) -> MitigationPlan:
    tried = tried or set()
    if not ev.symptoms:
        return MitigationPlan(root_cause="no symptom to act on", confidence=0.0, actions=[])
    primary = ev.symptoms[0]
    kinds = {s.kind for s in ev.symptoms}
    candidates: list[MitigationPlan] = []
    w = _workload(ev, primary.service)

    candidates += _recreate(ev, primary.service)
    candidates += _restore_services(ev)
    candidates += _restore_configs(ev)
    if w is not None and w.desired == 0:
        # 0. Scaled to nothing while something needs it: back to the count last seen healthy.
        replicas = w.known_good_replicas or 1
        candidates.append(MitigationPlan(
            root_cause=f"{w.deployment} is scaled to 0 replicas", confidence=0.9,
            expected_effect=f"{w.deployment} serves again with {replicas} replica(s)",
            actions=[Action(type=ActionType.SCALE, target=_deployment(w.deployment), replicas=replicas,
                            reason="the replica count last seen healthy" if w.known_good_replicas
                            else "no healthy count on record: one replica")]))
    if w is not None:
        # A recent rollout that changed what runs (a restart changes nothing: it is no suspect).
        recent = _recent(w.rolled_out_seconds_ago) and w.previous_revision is not None and w.rollout_changed
        # What the workload's own state shows, and what the symptoms claim when the signals bear them out.
        claimed = kinds if ev.corroborated else set()
        broken = w.crash_looping or w.ready < max(1, w.desired) or claimed & {"unavailable", "crash-loop", "not-ready"}
        troubled = bool(broken or claimed & {"latency", "error-rate", "oom", "cpu-throttled"})
        edits = _template_edits(ev, w.deployment)
        unchanged = not ev.changes and not ev.missing
        upstream = _rollback_dependencies(ev, primary.service, kinds)
        # 2. Its pod template is not the one last seen healthy, and it is in trouble.
        if w.healthy_revision is not None and troubled:
            what = "; ".join(f"{c.field.removeprefix('spec.template.spec.')}: {c.before or '(none)'} → "
                             f"{c.after or '(none)'}" for c in edits[:3]) or "its pod template"
            candidates.append(MitigationPlan(
                root_cause=f"{w.deployment}'s pod template changed since it was last seen healthy ({what}) "
                           f"and it brought {', '.join(sorted(kinds))}",
                confidence=0.85, expected_effect=f"{w.deployment} back on revision {w.healthy_revision}, "
                                                 "the template last seen healthy",
                actions=[Action(type=ActionType.ROLLBACK, target=_deployment(w.deployment),
                                revision=w.healthy_revision, reason="the revision with the healthy template")]))
        # 2'. No healthy copy on record: a recent rollout followed by trouble.
        if recent and not w.healthy_copy and troubled:
            candidates.append(MitigationPlan(
                root_cause=f"revision {w.revision} of {w.deployment}, "
                           f"rolled out {w.rolled_out_seconds_ago:.0f}s ago, brought {', '.join(sorted(kinds))}",
                confidence=0.8 if broken else 0.7,
                expected_effect=f"{w.deployment} back on revision {w.previous_revision}",
                actions=[Action(type=ActionType.ROLLBACK, target=_deployment(w.deployment),
                                revision=w.previous_revision,
                                reason=f"the trouble started with revision {w.revision}")]))
        # 2''. Its own template is as healthy, but a dependency's changed: the change is the suspect.
        if not edits:
            candidates += upstream
        # 3. OOM kills with no recent rollout.
        if w.oom_killed and not recent:
            candidates.append(_restart(
                w.deployment, f"{w.deployment} is killed for exceeding its memory limit (a leak or a limit too low)",
                0.5, "fresh processes with empty heaps; the limit may need raising", "OOM kills"))
        # 5. Nothing changed since healthy, and it fails or crashes: a process gone bad at runtime.
        if unchanged and ev.corroborated and (
                broken or "error-rate" in kinds or ("latency" in kinds and "saturation" not in kinds)):
            candidates.append(_restart(
                w.deployment, f"{w.deployment} {'crashes or is not ready' if broken else 'fails or is slow'} and "
                              "nothing on its path changed since it was last seen healthy: its process went bad",
                0.6, "fresh processes", "restart a process gone bad at runtime"))
        # 4. Saturation: slow but not failing, nothing changed.
        if kinds & {"latency", "saturation", "cpu-throttled"} and not broken and not recent and ev.corroborated \
                and not upstream:
            replicas = min(max(w.desired * 2, w.desired + 1), MAX_SCALE_OUT)
            saturated = next((x for x in ev.symptoms if x.kind in ("saturation", "cpu-throttled")), None)
            candidates.append(MitigationPlan(
                root_cause=f"{w.deployment} is saturated: " + (saturated.signal if saturated else
                                                               "latency above its SLO without errors") +
                           ", with no recent change",
                confidence=0.75 if saturated else 0.6, expected_effect=f"load spread over {replicas} replicas",
                actions=[Action(type=ActionType.SCALE, target=_deployment(w.deployment),
                                replicas=replicas, reason="more capacity")]))
        # 5. Broken without a recent change.
        if broken and not recent:
            candidates.append(_restart(
                w.deployment, f"{w.deployment} is {'crash-looping' if w.crash_looping else 'not ready'} "
                              "with no recent change", 0.4, "fresh pods", "restart a stuck workload"))
    for c in candidates:
        if not {_key(a) for a in c.actions} <= tried:
            return c
    return MitigationPlan(root_cause="no rule matches the evidence (or every matching plan was tried)",
                          confidence=0.0, actions=[])


def _key(a: Action) -> str:
    return f"{a.type}:{a.target.kind}/{a.target.name}"


def action_keys(p: MitigationPlan) -> set[str]:
    return {_key(a) for a in p.actions}
