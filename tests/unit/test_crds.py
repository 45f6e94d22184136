"""The CRDs are well-formed apiextensions v1 documents with structural schemas, and their examples
validate against them (the real API server's own checks are in tests/cluster/test_crds.py)."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

CRDS = Path(__file__).resolve().parents[2] / "crds"


def crd(kind: str) -> dict:
    for path in CRDS.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            return doc
    raise LookupError(kind)


def schema(kind: str) -> dict:
    return crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict, path: str = "$"):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize(("kind", "short"), [("FaultScenario", "fs"), ("Incident", "inc")])
def test_crd_metadata(kind: str, short: str) -> None:
    doc = crd(kind)
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["spec"]["group"] == "sre.stratus.dev"
    assert doc["spec"]["names"]["shortNames"] == [short]
    assert doc["spec"]["names"]["categories"] == ["sre"]
    version = doc["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}


# The schema keywords the CRDs use: any other key is a slip (a YAML flow mapping split at a comma
# inside a description makes one, which the API server refuses).
KEYWORDS = {"type", "description", "properties", "items", "required", "enum", "default", "format", "pattern",
            "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "minItems", "maxItems",
            "maxProperties", "additionalProperties", "nullable", "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
            "x-kubernetes-int-or-string", "anyOf", "oneOf"}


@pytest.mark.parametrize("kind", ["FaultScenario", "Incident"])
def test_schemas_are_structural(kind: str) -> None:
    for path, node in walk(schema(kind)):
        assert set(node) <= KEYWORDS, (path, sorted(set(node) - KEYWORDS))
        assert "$ref" not in node, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("description"), f"{path}: free-form fields must say why"
            continue
        assert "type" in node, f"{path} has no type"


def test_incident_printer_columns() -> None:
    cols = {c["name"]: c["jsonPath"] for c in crd("Incident")["spec"]["versions"][0]["additionalPrinterColumns"]}
    for name in ("Service", "Symptom", "Phase", "Attempts", "TTM", "Age"):
        assert name in cols
    assert cols["TTM"] == ".status.timeToMitigate"


EXAMPLES = sorted((CRDS / "examples").glob("*.yaml")) + sorted((CRDS.parent / "scenarios").glob("*.yaml"))


def test_there_is_an_example_per_implemented_scenario() -> None:
    from sre_operator.faults import FAULTS
    kinds = {yaml.safe_load(p.read_text())["spec"].get("type") for p in EXAMPLES}
    assert set(FAULTS) <= kinds


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    jsonschema.validate(doc, schema(doc["kind"]))


@pytest.mark.parametrize(("spec", "why"), [
    ({"type": "disk-full", "target": {"name": "payment"}}, "unknown type"),
    ({"type": "payment-crash", "target": {"name": "payment"}, "duration": "-5m"}, "negative duration"),
    ({"type": "payment-crash", "target": {"name": "payment"}, "duration": "soon"}, "not a duration"),
    ({"type": "payment-crash"}, "missing target"),
    ({"type": "payment-crash", "target": {"name": 42}}, "wrong type"),
    ({"type": "payment-crash", "target": {"name": "payment"}, "mode": "most"}, "unknown mode"),
    ({"type": "product-overload", "target": {"name": "product"}, "parameters": {"latencyMs": -1}}, "bad latency"),
    ({"type": "payment-crash", "target": {"name": "payment"}, "parameters": {"mode": "sideways"}}, "bad mode"),
])
def test_invalid_fault_scenarios_fail_the_schema(spec: dict, why: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"apiVersion": "sre.stratus.dev/v1alpha1", "kind": "FaultScenario",
                             "metadata": {"name": "x"}, "spec": spec}, schema("FaultScenario"))


def test_a_full_incident_status_validates() -> None:
    status = {
        "phase": "Resolved", "attempts": 1, "timeToDetect": "20s", "timeToMitigate": "1m5s",
        "symptoms": [{"kind": "unavailable", "service": "payment", "source": "kubernetes", "value": 0, "threshold": 1}],
        "diagnosis": {"rootCause": "payment process failed", "confidence": 0.9, "planner": "rules"},
        "plan": {"attempt": 1, "rootCause": "payment failed", "confidence": 0.9, "planner": "rules",
                 "actions": [{"type": "rollout-restart", "target": {"kind": "Deployment", "name": "payment"}}]},
        "actions": [{"attempt": 1, "index": 0, "type": "rollout-restart", "outcome": "applied",
                     "undo": {"restartedAt": None}}],
        "validation": [{"attempt": 1, "before": {"errorRatio": 0.4, "readyReplicas": 0},
                        "after": {"errorRatio": 0.0, "readyReplicas": 1}, "verdict": "better", "passed": True}],
        "undoLog": [], "llm": {"calls": 0, "promptTokens": 0, "completionTokens": 0},
        "timeline": [{"at": "2026-11-24T20:00:00Z", "phase": "Detected", "message": "opened"}],
        "conditions": [{"type": "Resolved", "status": "True"}],
    }
    jsonschema.validate(status, schema("Incident")["properties"]["status"])
    status["validation"][0]["verdict"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(status, schema("Incident")["properties"]["status"])


# The Incident CRD's status enums that mirror the operator's vocabulary (domain/vocabulary.py; the
# spec's and the phase: tests/unit/test_vocabulary.py), and how: "equal", or "subset" where the CRD
# deliberately accepts fewer values than the vocabulary has.
def _mirrors() -> dict[str, tuple[type, str]]:
    from sre_operator.domain import vocabulary as v
    return {
        "$.status.symptoms[].source": (v.Source, "equal"),
        "$.status.diagnosis.planner": (v.PlannerKind, "equal"),
        "$.status.diagnosis.diagnosedBy": (v.PlannerKind, "equal"),
        "$.status.diagnosis.suspect.kind": (v.TargetKind, "equal"),
        "$.status.llm.reasons[].stage": (v.ModelStage, "equal"),
        "$.status.plan.planner": (v.PlannerKind, "equal"),
        "$.status.plan.actions[].target.kind": (v.TargetKind, "equal"),
        "$.status.actions[].outcome": (v.Outcome, "equal"),
        "$.status.undoLog[].outcome": (v.Outcome, "subset"),  # what undoing one action can come to
    }


def test_the_incident_crd_s_status_enums_are_the_vocabulary_s() -> None:
    nodes = dict(walk(schema("Incident")))
    for path, (enum, relation) in _mirrors().items():
        listed, known = set(nodes[path]["enum"]), {m.value for m in enum}  # type: ignore[attr-defined]
        assert listed == known if relation == "equal" else listed <= known, (path, sorted(listed ^ known))


def test_action_types_in_the_incident_s_status_are_plain_strings() -> None:
    # Only the operator writes status, and the action registry is where its action types live.
    from sre_operator.domain.vocabulary import ActionType
    nodes = dict(walk(schema("Incident")))
    for path in ("$.status.plan.actions[].type", "$.status.actions[].type"):
        assert "enum" not in nodes[path] and nodes[path]["maxLength"] == 64, path
        assert "allowlist" in nodes[path]["description"]
    actions = [a.value for a in ActionType]
    assert all(len(a) <= 64 for a in actions)
    assert not any(set(n.get("enum") or []) & set(actions) for _, n in nodes.items())


@pytest.mark.parametrize("kind", ["FaultScenario", "Incident"])
def test_every_field_has_a_description_for_kubectl_explain(kind: str) -> None:
    """`kubectl explain incident.status.diagnosis` prints each field's description: every property
    of the schema has one (an array's items and a map's values are described by their field; the API
    server forbids one on metadata, whose fields kubectl explain takes from ObjectMeta)."""
    missing = [path for path, node in walk(schema(kind)) if path not in ("$", "$.metadata")
               and not path.endswith(("[]", "{}")) and not str(node.get("description") or "").strip()]
    assert missing == [], f"{kind}: {len(missing)} field(s) without a description: {', '.join(missing)}"


class _NoDuplicateKeys(yaml.SafeLoader):
    """A loader that refuses a key given twice in one mapping (PyYAML keeps the last one silently;
    the API server's YAML reader refuses the document)."""


def _mapping(loader: _NoDuplicateKeys, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    twice = {k for k in keys if keys.count(k) > 1}
    assert not twice, f"{sorted(twice)} given twice at line {node.start_mark.line + 1}"
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_NoDuplicateKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_no_key_is_given_twice(path: Path) -> None:
    yaml.load(path.read_text(), _NoDuplicateKeys)  # noqa: S506 - a SafeLoader that also refuses duplicates
