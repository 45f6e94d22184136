"""Triage's diagnosis (`status.diagnosis`): the rules' one, made from the evidence and the plan the
rules would pick, so the field is always filled; and the check of the model's, which may only name
as suspect an object the evidence holds (a hallucinated name is refused, with the name).

A diagnosis is shown to people, never acted on: the plan is made and vetted on its own."""
from __future__ import annotations

import re

from ..domain.models import Diagnosis, Evidence, MitigationPlan, Target
from ..domain.vocabulary import PlannerKind, TargetKind

FACTS = 5
FACT_CHARS = 300


class DiagnosisRefused(ValueError):
    """The model's diagnosis cannot be shown as it is (the reason says why)."""


def facts(ev: Evidence) -> list[str]:
    """The evidence's strongest facts, most telling first: what broke, what changed, what is gone."""
    out = [f"{s.service}: {s.kind} ({s.signal})" for s in ev.symptoms[:2]]
    out += [f"{c.name}.{c.known_good_key} differs from its known-good version" for c in ev.configs
            if c.differs_from_known_good]
    out += [f"service/{s.name}: {s.problem}" for s in ev.services if s.problem]
    out += [f"{t.kind.lower()}/{t.name} is gone" for t in ev.missing]
    out += [f"{c.kind.lower()}/{c.name} {c.field}: {c.before or '(none)'} → {c.after or '(none)'}" for c in ev.changes]
    out += [f"{w.deployment}: crash-looping" for w in ev.workloads if w.crash_looping]
    return [x[:FACT_CHARS] for x in out[:FACTS]]


def from_rules(ev: Evidence, plan: MitigationPlan) -> Diagnosis:
    """What the rules conclude: the root cause and target of the plan they would pick, or, when
    none matches, the affected service itself."""
    if not ev.symptoms:
        return Diagnosis(summary="no symptom", root_cause="no symptom to explain", diagnosed_by=PlannerKind.RULES)
    primary = ev.symptoms[0]
    if plan.actions:
        suspect: Target | None = Target(kind=plan.actions[0].target.kind, name=plan.actions[0].target.name)
        cause = plan.root_cause
    else:
        known = any(w.service == primary.service for w in ev.workloads)
        suspect = Target(kind=TargetKind.DEPLOYMENT, name=primary.service) if known else None
        cause = f"no rule explains the {primary.kind} of {primary.service}"
    return Diagnosis(summary=f"{primary.service}: {primary.kind} ({primary.signal})"[:1024], root_cause=cause[:1024],
                     suspect=suspect, evidence=facts(ev), confidence=plan.confidence, diagnosed_by=PlannerKind.RULES)


OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a Kubernetes object's name (DNS-1123)


def known_objects(ev: Evidence) -> set[tuple[str, str]]:
    """(kind, name) of every object the evidence names: only these may be suspected."""
    out = {(TargetKind.DEPLOYMENT.value, w.deployment) for w in ev.workloads}
    out |= {(TargetKind.CONFIG_MAP.value, c) for w in ev.workloads for c in w.config_maps}
    out |= {(TargetKind.CONFIG_MAP.value, c.name) for c in ev.configs}
    out |= {(TargetKind.SERVICE.value, s.name) for s in ev.services}
    out |= {(str(t.kind), t.name) for t in ev.missing}
    out |= {(str(c.kind), c.name) for c in ev.changes}
    # A log line is "pod/container: text"; its text is anyone's (a line that looks like a name is not one).
    out |= {(TargetKind.POD.value, pod) for line in ev.log_lines if "/" in line.split(":", 1)[0]
            and OBJECT_NAME.fullmatch(pod := line.split("/", 1)[0])}
    return out


def distinct(facts: list[str]) -> list[str]:
    """Each fact once, stripped, in the order first said; empty ones out (a small model repeats itself)."""
    return list(dict.fromkeys(f for x in facts if (f := x.strip())))


def checked(diagnosis: Diagnosis, ev: Evidence) -> Diagnosis:
    """The model's diagnosis when it says something and suspects an object of the evidence (its
    facts each said once: a small model repeats itself); DiagnosisRefused otherwise."""
    if not diagnosis.summary.strip() or not diagnosis.root_cause.strip():
        raise DiagnosisRefused("the diagnosis is empty")
    suspect = diagnosis.suspect
    if suspect is not None and (str(suspect.kind), suspect.name) not in known_objects(ev):
        raise DiagnosisRefused(f"the diagnosis suspects {str(suspect.kind).lower()}/{suspect.name[:100]}, "
                               "which the evidence does not name")
    facts = distinct(diagnosis.evidence)
    return diagnosis if facts == diagnosis.evidence else diagnosis.model_copy(update={"evidence": facts})
