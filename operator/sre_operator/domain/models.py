"""The pipeline's data, as Pydantic models: what triage saw, what the planner proposes, what each
action did (and how to undo it), and what validation concluded. Field names match the Incident
CRD's status, so a model dumps straight into it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .vocabulary import ActionType, Mode, PlannerKind, PlannerPolicy, Source, SymptomKind, TargetKind

__all__ = ["ActionType", "SymptomKind", "TargetKind"]


class Model(BaseModel):
    # Enum fields hold their plain string values: a model dumps straight into a status document.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)


class Symptom(Model):
    kind: SymptomKind
    service: str
    signal: str
    value: float = 0.0
    threshold: float = 0.0
    window: str = ""
    source: Source = Source.PROMETHEUS
    evidence: str = ""


class WorkloadFacts(Model):
    """What the Kubernetes API says about one service's Deployment (triage evidence)."""
    service: str
    deployment: str
    desired: int = 1
    ready: int = 0
    restarts: int = 0
    revision: int = 0
    previous_revision: int | None = Field(None, alias="previousRevision")
    rolled_out_seconds_ago: float | None = Field(None, alias="rolledOutSecondsAgo")
    crash_looping: bool = Field(False, alias="crashLooping")
    oom_killed: bool = Field(False, alias="oomKilled")
    config_maps: list[str] = Field(default_factory=list, alias="configMaps")
    known_good_replicas: int | None = Field(None, alias="knownGoodReplicas")
    # The revision whose pod template is the one last seen healthy, when the current one is not
    # (None: the current template is the healthy one, or no healthy copy or revision has it).
    healthy_revision: int | None = Field(None, alias="healthyRevision")
    healthy_copy: bool = Field(False, alias="healthyCopy")
    # The last rollout changed what runs (not a restart: the previous revision's template differs).
    rollout_changed: bool = Field(False, alias="rolloutChanged")  # a copy of its Deployment seen healthy is on record


class ConfigFacts(Model):
    """A ConfigMap a workload mounts: whether it changed since it was last seen healthy."""
    name: str
    changed_seconds_ago: float | None = Field(None, alias="changedSecondsAgo")
    differs_from_known_good: bool = Field(False, alias="differsFromKnownGood")
    known_good_key: str | None = Field(None, alias="knownGoodKey")
    # Only for a config that differs: both versions, so a planner can see (and write) the fix.
    value: str | None = None
    known_good_value: str | None = Field(None, alias="knownGoodValue")


class ServiceFacts(Model):
    """A Service of the application: whether it reaches its pods, and whether its selector and
    ports are still the ones last seen healthy."""
    name: str
    selector: dict[str, str] = Field(default_factory=dict)
    target_ports: list[str] = Field(default_factory=list, alias="targetPorts")
    problem: str | None = None  # selects no pod, or a target port no container has
    changed_seconds_ago: float | None = Field(None, alias="changedSecondsAgo")
    differs_from_known_good: bool = Field(False, alias="differsFromKnownGood")
    known_good_selector: dict[str, str] | None = Field(None, alias="knownGoodSelector")
    known_good_target_ports: list[str] | None = Field(None, alias="knownGoodTargetPorts")


class TraceFacts(Model):
    """One recent trace through the affected path, boiled down (from the trace store)."""
    trace_id: str = Field(alias="traceId")
    root: str  # service: operation of the root span
    duration_ms: float = Field(alias="durationMs")
    spans: int = 0
    failed_spans: list[str] = Field(default_factory=list, alias="failedSpans")
    slowest_span: str = Field("", alias="slowestSpan")




class Target(Model):
    kind: TargetKind
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None


class ChangeFacts(Model):
    """One difference between an object now and its last healthy copy (`detection/changes.py`)."""
    kind: TargetKind
    name: str
    field: str
    before: str = ""
    after: str = ""
    missing: bool = False


class Evidence(Model):
    symptoms: list[Symptom]
    workloads: list[WorkloadFacts] = Field(default_factory=list)
    configs: list[ConfigFacts] = Field(default_factory=list)
    services: list[ServiceFacts] = Field(default_factory=list)
    traces: list[TraceFacts] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list, alias="logLines")
    # Objects of the application seen healthy (a copy is on record) that no longer exist.
    missing: list[Target] = Field(default_factory=list)
    # What changed since the affected path was last seen healthy (its Deployments, Services, configs).
    changes: list[ChangeFacts] = Field(default_factory=list)
    # The signals show the incident's service in trouble right now (not only the Incident says so).
    corroborated: bool = True


class Action(Model):
    type: ActionType
    target: Target
    replicas: int | None = Field(None, ge=0, le=50)
    revision: int | None = Field(None, ge=1)
    data: dict[str, str] | None = None
    reason: str = Field("", max_length=1024)


class MitigationPlan(Model):
    root_cause: str = Field(alias="rootCause", max_length=2048)
    confidence: float = Field(ge=0, le=1)
    expected_effect: str = Field("", alias="expectedEffect", max_length=2048)
    actions: list[Action] = Field(min_length=0, max_length=5)
    planner: PlannerKind = PlannerKind.RULES


class Diagnosis(Model):
    """Triage's conclusion (the seed's SymptomList boiled down): what is wrong, the object suspected
    of causing it, and the evidence that points there. Written by the rules or by the model; either
    way it is only shown to people, never acted on (the plan is vetted on its own)."""
    summary: str = Field(max_length=1024)
    root_cause: str = Field(alias="rootCause", max_length=1024)
    suspect: Target | None = None
    evidence: list[str] = Field(default_factory=list, max_length=6)
    confidence: float = Field(0.0, ge=0, le=1)
    diagnosed_by: PlannerKind = Field(PlannerKind.RULES, alias="diagnosedBy")


class Health(Model):
    """One service's SLO signals at a moment (validation compares two of these)."""
    error_ratio: float | None = Field(None, alias="errorRatio")
    p95_seconds: float | None = Field(None, alias="p95Seconds")
    request_rate: float | None = Field(None, alias="requestRate")
    ready_replicas: int | None = Field(None, alias="readyReplicas")
    desired_replicas: int | None = Field(None, alias="desiredReplicas")
    restarts: int | None = None
    scrape_up: bool | None = Field(None, alias="scrapeUp")
    complete: bool = True


class Verdict(Model):
    verdict: Literal["better", "same", "worse"]
    passed: bool
    message: str


class IncidentSpec(BaseModel):
    """An Incident's spec as the pipeline reads it (the CRD's schema checked it on the way in; what
    it does not know is ignored here, as the API server would have pruned it)."""
    model_config = ConfigDict(extra="ignore", populate_by_name=True, use_enum_values=True)

    service: str = Field(min_length=1, max_length=63)
    symptom: SymptomKind
    source: Source = Source.MANUAL
    summary: str = ""
    detected_at: str | None = Field(None, alias="detectedAt")  # the symptom's onset (its first breaching reading)
    mode: Mode | None = None
    planner: PlannerPolicy | None = None
    max_attempts: int = Field(3, ge=1, le=10, alias="maxAttempts")
