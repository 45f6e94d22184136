"""The operator's one vocabulary: every phase, symptom, action type, fault type and kind it speaks of,
as string enums. The CRDs' enums and the model's action list are checked against (or generated
from) these; nothing else spells them out.

String enums compare equal to their values (`Phase.RESOLVED == "Resolved"`), so status documents
read back from the API server need no conversion."""
from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """An Incident's phase (`status.phase`)."""
    DETECTED = "Detected"
    TRIAGING = "Triaging"
    PLANNING = "Planning"
    AWAITING_APPROVAL = "AwaitingApproval"
    MITIGATING = "Mitigating"
    VALIDATING = "Validating"
    UNDOING = "Undoing"
    RESOLVED = "Resolved"
    ESCALATED = "Escalated"
    DRY_RUN = "DryRun"
    FAILED = "Failed"


TERMINAL: frozenset[Phase] = frozenset({Phase.RESOLVED, Phase.ESCALATED, Phase.DRY_RUN, Phase.FAILED})
ACTING: frozenset[Phase] = frozenset({Phase.MITIGATING, Phase.VALIDATING, Phase.UNDOING})
WARNING_PHASES: frozenset[Phase] = frozenset({Phase.ESCALATED, Phase.UNDOING, Phase.FAILED})


class SymptomKind(StrEnum):
    """What a breach looks like. Listed most severe first: of several symptoms of one service in
    one reading, the first names the Incident."""
    CRASH_LOOP = "crash-loop"
    OOM = "oom"
    UNAVAILABLE = "unavailable"
    ENDPOINTS_MISSING = "endpoints-missing"
    ROUTE_MISSING = "route-missing"
    ERROR_RATE = "error-rate"
    LATENCY = "latency"
    SATURATION = "saturation"
    CPU_THROTTLED = "cpu-throttled"  # its containers held back by their CPU limit (cAdvisor's CFS figures)
    NOT_READY = "not-ready"
    SCRAPE_DOWN = "scrape-down"


SEVERITY_ORDER: tuple[SymptomKind, ...] = tuple(SymptomKind)
# Symptoms a caller shows when a dependency is the one in trouble (folded into the dependency's).
TRAVELLING: frozenset[SymptomKind] = frozenset({SymptomKind.ERROR_RATE, SymptomKind.LATENCY})
CRITICAL: frozenset[SymptomKind] = frozenset({
    SymptomKind.UNAVAILABLE, SymptomKind.CRASH_LOOP, SymptomKind.OOM, SymptomKind.ERROR_RATE,
    SymptomKind.ENDPOINTS_MISSING, SymptomKind.ROUTE_MISSING})


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


def severity_of(symptom: SymptomKind | str) -> Severity:
    return Severity.CRITICAL if symptom in CRITICAL else Severity.WARNING


class Source(StrEnum):
    """Where a symptom was seen."""
    PROMETHEUS = "prometheus"
    KUBERNETES = "kubernetes"
    LOGS = "logs"
    EVENTS = "events"
    TRACES = "traces"
    MANUAL = "manual"


class TargetKind(StrEnum):
    """Kinds of objects the operator reads and acts on."""
    DEPLOYMENT = "Deployment"
    CONFIG_MAP = "ConfigMap"
    POD = "Pod"
    SERVICE = "Service"


class SelectorMode(StrEnum):
    """Which of a FaultScenario's matching objects are hit (Chaos Mesh's modes)."""
    ONE = "one"
    ALL = "all"
    FIXED = "fixed"
    FIXED_PERCENT = "fixed-percent"


class ActionType(StrEnum):
    """The allowlisted mitigation actions (each one module of `sre_operator.actions`)."""
    ROLLOUT_RESTART = "rollout-restart"
    SCALE = "scale"
    ROLLBACK = "rollback"
    PATCH_CONFIGMAP = "patch-configmap"
    DELETE_POD = "delete-pod"
    RESTORE_SERVICE = "restore-service"
    RECREATE = "recreate"


class FaultType(StrEnum):
    """FaultScenario types (each one module of `sre_operator.faults`)."""
    BAD_GATEWAY_CONFIG = "bad-gateway-config"
    PAYMENT_CRASH = "payment-crash"
    PRODUCT_OVERLOAD = "product-overload"
    SCALE_TO_ZERO = "scale-to-zero"
    BAD_ROLLOUT = "bad-rollout"
    SERVICE_SELECTOR_MISMATCH = "service-selector-mismatch"
    BAD_ENV = "bad-env"
    REAL_OVERLOAD = "real-overload"
    MEMORY_LEAK = "memory-leak"
    ROUTE_REMOVED = "route-removed"


class FaultMode(StrEnum):
    """How a FaultScenario puts its fault in place (`spec.parameters.mode`): as a new revision, or
    flipped inside the running processes through their fault hooks (no rollout: a rollback cannot
    undo it, new pods start clean)."""
    ROLLOUT = "rollout"
    RUNTIME = "runtime"


class HookState(StrEnum):
    """One pod of a runtime-mode FaultScenario target (`status.targets[].pods[].phase`)."""
    PENDING = "Pending"  # selected and recorded, not flipped yet
    INJECTED = "Injected"  # its process flipped through the fault hook
    REVERTED = "Reverted"  # its hook cleared
    GONE = "Gone"  # the pod no longer exists (its successor starts clean)
    FAILED = "Failed"  # its hook refused the revert (the record's change says why)


class FaultPhase(StrEnum):
    """A FaultScenario's phase."""
    PENDING = "Pending"
    INJECTED = "Injected"
    REVERTING = "Reverting"
    REVERTED = "Reverted"
    FAILED = "Failed"


class FaultCondition(StrEnum):
    """A FaultScenario's conditions (Chaos Mesh's), derived from its per-target records."""
    SELECTED = "Selected"
    ALL_INJECTED = "AllInjected"
    ALL_RECOVERED = "AllRecovered"


class Mode(StrEnum):
    """How far the operator goes on its own."""
    AUTO = "auto"
    APPROVE = "approve"
    DRY_RUN = "dry-run"


class PlannerKind(StrEnum):
    """Who wrote a plan or a diagnosis."""
    LLM = "llm"
    RULES = "rules"


class PlannerPolicy(StrEnum):
    """When the model is asked (`SRE_OPERATOR_PLANNER`, an Incident's `spec.planner`). Listed from
    the strictest (the model never sees the incident) to the loosest: an Incident may only move
    towards the first."""
    RULES = "rules"  # never the model
    HYBRID = "hybrid"  # a matching rule acts at once; the model when none matches or a rule's plan was undone
    LLM = "llm"  # the model plans every attempt (the rules when it fails)


class ModelStage(StrEnum):
    """The stage a model call served (`status.llm.reasons[].stage`)."""
    TRIAGE = "triage"
    PLANNING = "planning"


class Outcome(StrEnum):
    """An action record's outcome."""
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNDONE = "undone"


DONE_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.APPLIED, Outcome.FAILED, Outcome.SKIPPED, Outcome.UNDONE})


def values(enum: type[StrEnum]) -> list[str]:
    """The enum's values in declaration order (as a CRD lists them)."""
    return [m.value for m in enum]
