"""Checks a plan from an untrusted author (the LLM) before anything is done with it, against what
the cluster holds right now (`PlanContext`, gathered by the pipeline's Kubernetes adapter):

- every action is in the typed allowlist, on the kind it acts on, in the incident's namespace;
- every target exists and belongs to the application (a Deployment or ConfigMap of the evidence,
  a pod of one of its Deployments): a model cannot name another object;
- a rollback names a revision the Deployment still has, other than the current one;
- a scale keeps at least one replica and at most `max_replicas`;
- a restore-service names a Service of the application with a known-good version on record;
- a new config keeps the ConfigMap's keys and passes `configcheck` (NGINX configs: upstreams are
  Services of the namespace, `nginx -t`);
- the plan is not one already tried and undone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import actions as acts
from ..domain.models import Action, MitigationPlan
from . import configcheck


@dataclass
class PlanContext:
    namespace: str
    deployments: dict[str, set[int]] = field(default_factory=dict)  # name → revisions it has
    current_revision: dict[str, int] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # name → data
    pods: set[str] = field(default_factory=set)
    services: dict[str, set[int]] = field(default_factory=dict)  # name → ports
    restorable_services: set[str] = field(default_factory=set)  # the application's, with a known-good record
    tried: set[str] = field(default_factory=set)
    max_replicas: int = 10


def check_config_data(action: Action, ctx: PlanContext) -> None:
    """A ConfigMap patch keeps the keys it has, and a new NGINX config must be valid."""
    current = ctx.config_maps.get(action.target.name, {})
    for key, value in (action.data or {}).items():
        if key not in current:
            raise acts.ActionRefused(f"configmap/{action.target.name} has no key {key!r}")
        if configcheck.is_nginx_config(key, current[key]):
            result = configcheck.check_nginx_config(value, ctx.namespace, ctx.services)
            if not result.ok:
                raise acts.ActionRefused(f"the new {key} is not a valid config: {result.message()}")


def check_action(action: Action, ctx: PlanContext) -> None:
    acts.check(action, ctx.namespace)
    kind, name = action.target.kind, action.target.name
    if kind == "Deployment" and name not in ctx.deployments:
        raise acts.ActionRefused(f"deployment/{name} is not a workload of this application in {ctx.namespace}")
    if kind == "ConfigMap" and name not in ctx.config_maps:
        raise acts.ActionRefused(f"configmap/{name} is not a config of this application in {ctx.namespace}")
    if kind == "Service" and name not in ctx.restorable_services:
        raise acts.ActionRefused(f"service/{name} is not a Service of this application with a known-good version "
                                 f"in {ctx.namespace}")
    if kind == "Pod" and name not in ctx.pods:
        raise acts.ActionRefused(f"pod/{name} is not a pod of this application in {ctx.namespace}")
    if action.type == "rollback":
        if action.revision not in ctx.deployments[name]:
            raise acts.ActionRefused(f"deployment/{name} has no revision {action.revision}")
        if action.revision == ctx.current_revision.get(name):
            raise acts.ActionRefused(f"deployment/{name} already runs revision {action.revision}")
    if action.type == "scale" and not 1 <= (action.replicas or 0) <= ctx.max_replicas:
        raise acts.ActionRefused(f"scale to {action.replicas} replicas: allowed 1..{ctx.max_replicas}")
    if action.type == "patch-configmap":
        check_config_data(action, ctx)


def vet(plan: MitigationPlan, ctx: PlanContext) -> None:
    """Raises ActionRefused with the first reason the plan cannot be carried out as it is."""
    for action in plan.actions:
        check_action(action, ctx)
    keys = {f"{a.type}:{a.target.kind}/{a.target.name}" for a in plan.actions}
    if keys and keys <= ctx.tried:
        raise acts.ActionRefused("the plan repeats actions already tried and undone: " + ", ".join(sorted(keys)))
