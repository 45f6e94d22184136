"""When the model is asked (the planner policy, `PlannerPolicy`), as one pure decision per stage:

- `rules`: never; the Incident's data never leaves the operator;
- `hybrid` (the default): triage asks it for a diagnosis; planning asks it only when no rule matches
  the evidence or the rules' plan of the attempt before was undone (a rule that matches acts at
  once: fast and free). When a rule matches at triage, the diagnosis is asked in the background
  (`Ask.background`): the Incident goes on at once with the rules' diagnosis and plan, and the
  model's diagnosis is recorded whenever it comes; when none matches, triage waits for it (the
  model's diagnosis comes before its plan);
- `llm`: triage and every plan.

Whatever the policy, the model is not asked when none is configured or the Incident has spent its
token budget; the rules decide then, and where the model was wanted the reason is recorded (a
fallback). An Incident may ask for a stricter policy than the operator's, never a looser one (as
with `mode`): whoever can create an Incident cannot send the cluster's data to a model the operator
was told not to use."""
from __future__ import annotations

from dataclasses import dataclass

from ..domain.models import MitigationPlan
from ..domain.vocabulary import ModelStage, PlannerKind, PlannerPolicy

STRICTNESS = tuple(PlannerPolicy)  # strictest first


def effective_policy(operator_policy: str, incident_policy: str | None) -> PlannerPolicy:
    """The stricter of the operator's policy and the one the Incident asks for."""
    policies = [PlannerPolicy(operator_policy)] + ([PlannerPolicy(incident_policy)] if incident_policy else [])
    return min(policies, key=STRICTNESS.index)


@dataclass(frozen=True)
class Ask:
    """Whether the model is asked at this stage, and why (or why not). `fallback`: the model was
    wanted and is not asked (the reason goes into `status.llm`). `background`: the question does not
    hold the Incident up (its answer is recorded by a later tick, whatever the phase then)."""
    ask: bool
    why: str
    fallback: bool = False
    background: bool = False


@dataclass(frozen=True)
class Budget:
    tokens: int  # per incident
    spent: int


def decide(stage: ModelStage, policy: PlannerPolicy, *, configured: bool, triage: bool, budget: Budget,
           rules_plan: MitigationPlan | None = None, last_plan_by: str | None = None,
           attempt: int = 1) -> Ask:
    """The decision for one stage. `rules_plan`: what the rules would do now; `last_plan_by`: who
    planned the attempt before (undone, since planning runs again)."""
    if policy == PlannerPolicy.RULES:
        return Ask(False, "planner: rules")
    background = False
    if stage == ModelStage.TRIAGE:
        if not triage:
            return Ask(False, "triage by the model is off")
        background = policy == PlannerPolicy.HYBRID and rules_plan is not None and bool(rules_plan.actions)
        why = "triage, in the background: a rule matches the evidence and acts at once" if background else "triage"
    elif policy == PlannerPolicy.LLM:
        why = "planner: llm"
    elif rules_plan is None or not rules_plan.actions:
        why = "no rule matches the evidence"
    elif attempt > 1 and last_plan_by == PlannerKind.RULES:
        why = f"the rules' plan of attempt {attempt - 1} was undone"
    else:
        return Ask(False, "a rule matches the evidence")
    if not configured:
        return Ask(False, "no model is configured", fallback=policy == PlannerPolicy.LLM)
    if budget.spent >= budget.tokens:
        return Ask(False, f"the incident's token budget is spent ({budget.spent} of {budget.tokens})", fallback=True)
    return Ask(True, why, background=background)
