"""The model as triage and planning agent: the evidence goes to any OpenAI-compatible server
through the `ChatModel` port (prompts: `prompt.py`), and the answer comes back as a Pydantic
structured output (a JSON schema the server is asked to follow, then validated here again).

Whatever comes back is checked afterwards anyway (a diagnosis by `diagnosis.checked`, a plan by
`vetting.vet`): this module only turns an answer into a `Diagnosis` or a `MitigationPlan`, or says
why it could not (`LlmError`), with the tokens it cost either way."""
from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..domain.models import Action, Diagnosis, Evidence, MitigationPlan, Target
from ..domain.policy import LlmConfig
from ..domain.ports import ChatModel, ModelCallFailed, Tokens
from ..domain.vocabulary import ActionType, ModelStage, PlannerKind, TargetKind
from . import prompt, redact
from .diagnosis import distinct, known_objects

CALL_SECONDS_KEPT = 20  # per-call durations kept in status.llm
REASONS_KEPT = 10


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigEntry(_Answer):
    key: str
    value: str


class LlmTarget(_Answer):
    kind: TargetKind
    name: str
    namespace: str | None = Field(description="leave null: the incident's namespace")


class LlmAction(_Answer):
    type: ActionType
    target: LlmTarget
    replicas: int | None = Field(description="scale only")
    revision: int | None = Field(description="rollback only: the revision to go back to")
    data: list[ConfigEntry] | None = Field(description="patch-configmap only: the new value of each key")
    reason: str


class LlmPlan(_Answer):
    """The structured output the model must return."""
    summary: str = Field(description="what the evidence shows, in two or three sentences")
    root_cause: str
    confidence: float = Field(description="0 to 1")
    expected_effect: str
    actions: list[LlmAction]


class LlmSuspect(_Answer):
    kind: TargetKind
    name: str


class LlmDiagnosis(_Answer):
    """The structured output of the "diagnose" task."""
    summary: str = Field(description="what is wrong, in one or two sentences")
    root_cause: str
    suspect: LlmSuspect = Field(description="the object suspected of causing it, named as in the evidence")
    evidence: list[str] = Field(description="up to five short facts from the evidence that point there")
    confidence: float = Field(description="0 to 1")


KINDS = frozenset(k.value for k in TargetKind)
B = TypeVar("B", bound=BaseModel)


def _one_of(names: Collection[str]) -> Any:
    """A string that can only be one of `names`: an enum in the JSON schema, so a server that follows
    the schema with a grammar (llama.cpp) cannot write any other name."""
    return Literal[tuple(sorted(names))]


def _objects(ev: Evidence, base: type[B]) -> Any:
    """`base` (a kind and a name) narrowed to the objects the evidence names: one variant per kind,
    its name one of that kind's (`anyOf` in the schema: no kind is paired with another kind's name,
    "configmap/product"); None when the evidence names none."""
    by_kind: dict[str, set[str]] = {}
    for kind, name in known_objects(ev):
        if kind in KINDS:
            by_kind.setdefault(kind, set()).add(name)
    variants = [create_model(f"{base.__name__}{kind}", __base__=base, kind=(_one_of([kind]), ...),
                             name=(_one_of(names), ...)) for kind, names in sorted(by_kind.items())]
    if not variants:
        return None
    return variants[0] if len(variants) == 1 else Union[tuple(variants)]  # noqa: UP007 - built at run time


def plan_schema(ev: Evidence) -> type[LlmPlan]:
    """The plan's schema for this incident: a target is one of the objects the evidence names (a small
    model otherwise invents plausible ones, "payment-config", or pairs a name with the wrong kind).
    Vetting checks the plan anyway."""
    target = _objects(ev, LlmTarget)
    if target is None:
        return LlmPlan
    action = create_model("LlmAction", __base__=LlmAction, target=(target, ...))
    return create_model("LlmPlan", __base__=LlmPlan, actions=(list[action], ...))


def diagnosis_schema(ev: Evidence) -> type[LlmDiagnosis]:
    """The diagnosis's schema for this incident: its suspect is one of the objects the evidence names."""
    suspect = _objects(ev, LlmSuspect)
    if suspect is None:
        return LlmDiagnosis
    return create_model("LlmDiagnosis", __base__=LlmDiagnosis,
                        suspect=(suspect, Field(description="the object suspected of causing it, named as in the "
                                                            "evidence")))


class LlmError(RuntimeError):
    """The model gave no usable answer; `usage` is what the call(s) cost anyway."""

    def __init__(self, reason: str, usage: dict[str, Any]) -> None:
        super().__init__(reason)
        self.usage = usage


def to_plan(answer: LlmPlan) -> MitigationPlan:
    """The model's answer as our plan (ValidationError: it broke a limit of the plan model)."""
    actions = [Action(type=a.type, target=Target(kind=a.target.kind, name=a.target.name,
                                                 namespace=a.target.namespace),
                      replicas=a.replicas, revision=a.revision,
                      data={e.key: e.value for e in a.data} if a.data else None, reason=a.reason[:1024])
               for a in answer.actions]
    return MitigationPlan(root_cause=answer.root_cause[:2048], confidence=min(1.0, max(0.0, answer.confidence)),
                          expected_effect=(answer.summary + " " + answer.expected_effect).strip()[:2048],
                          actions=actions, planner=PlannerKind.LLM)


def to_diagnosis(answer: LlmDiagnosis) -> Diagnosis:
    """The model's diagnosis as ours, every text cleaned and cut to its limit (it is only shown)."""
    return Diagnosis(summary=redact.clean(answer.summary, 1024), root_cause=redact.clean(answer.root_cause, 1024),
                     suspect=Target(kind=answer.suspect.kind, name=redact.clean(answer.suspect.name, 253) or "?"),
                     evidence=distinct([redact.clean(x, 300) for x in answer.evidence])[:5],
                     confidence=min(1.0, max(0.0, answer.confidence)), diagnosed_by=PlannerKind.LLM)


A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")


class LlmPlanner:
    def __init__(self, config: LlmConfig, client: ChatModel) -> None:
        self.config = config
        self.client = client

    def usage(self, tokens: Tokens) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.config.model, "calls": tokens.calls, "promptTokens": tokens.prompt,
                     "completionTokens": tokens.completion}
        if self.config.prompt_usd_per_million or self.config.completion_usd_per_million:
            out["costUSD"] = round((tokens.prompt * self.config.prompt_usd_per_million
                                    + tokens.completion * self.config.completion_usd_per_million) / 1e6, 6)
        return out

    def _ask(self, stage: ModelStage, ev: Evidence, namespace: str, tried: set[str], schema: type[A],
             convert: Callable[[A], R]) -> tuple[R, dict[str, Any]]:
        """(the converted answer, usage), or LlmError with the reason and the usage."""
        try:
            answer = self.client.structured(self.config.model, prompt.messages(stage, ev, namespace, tried), schema,
                                            self.config.max_tokens)
        except ModelCallFailed as exc:
            raise LlmError(str(exc), self.usage(exc.tokens)) from exc
        usage = self.usage(answer.tokens)
        try:
            return convert(answer.value), usage
        except ValidationError as exc:
            raise LlmError(f"the answer breaks a limit: {str(exc)[:400]}", usage) from exc

    def plan(self, ev: Evidence, namespace: str, tried: set[str]) -> tuple[MitigationPlan, dict[str, Any]]:
        """(plan, usage), or LlmError with the reason and the usage."""
        return self._ask(ModelStage.PLANNING, ev, namespace, tried, plan_schema(ev), to_plan)

    def diagnose(self, ev: Evidence, namespace: str) -> tuple[Diagnosis, dict[str, Any]]:
        """(diagnosis, usage), or LlmError with the reason and the usage."""
        return self._ask(ModelStage.TRIAGE, ev, namespace, set(), diagnosis_schema(ev), to_diagnosis)


def add_usage(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Token usage summed over every call an incident made."""
    out = dict(total or {})
    out["model"] = more.get("model", out.get("model", ""))
    for k in ("calls", "promptTokens", "completionTokens"):
        out[k] = int(out.get(k) or 0) + int(more.get(k) or 0)
    if "costUSD" in more or "costUSD" in out:
        out["costUSD"] = round(float(out.get("costUSD") or 0) + float(more.get("costUSD") or 0), 6)
    if more.get("callSeconds"):
        out["callSeconds"] = [*(out.get("callSeconds") or []), *more["callSeconds"]][-CALL_SECONDS_KEPT:]
    return out


def tokens_spent(total: dict[str, Any] | None) -> int:
    """Prompt and completion tokens an incident has spent on the model (as counted from `usage`)."""
    try:
        return int((total or {}).get("promptTokens") or 0) + int((total or {}).get("completionTokens") or 0)
    except (TypeError, ValueError):
        return 0


def with_fallback(total: dict[str, Any] | None, stage: ModelStage, reason: str, at: str) -> dict[str, Any]:
    """`status.llm` with one more fallback to the rules, and why (the last few reasons kept)."""
    out = dict(total or {})
    out["fallbacks"] = int(out.get("fallbacks") or 0) + 1
    out["reasons"] = [*(out.get("reasons") or []),
                      {"at": at, "stage": stage.value, "reason": reason[:1000]}][-REASONS_KEPT:]
    return out
