"""One vocabulary: the Incident CRD's enums are the operator's enums, word for word, so a value the
API server accepts is one the operator knows and the other way round."""
from __future__ import annotations

from enum import StrEnum

import pytest

from sre_operator.domain.vocabulary import (
    SEVERITY_ORDER,
    Mode,
    Phase,
    PlannerPolicy,
    Severity,
    Source,
    SymptomKind,
    values,
)
from tests.unit.test_crds import schema


def _prop(path: str) -> dict:
    node = schema("Incident")
    for part in path.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize(("path", "enum"), [
    ("spec.symptom", SymptomKind), ("spec.mode", Mode), ("spec.severity", Severity), ("status.phase", Phase),
    ("spec.planner", PlannerPolicy),
])
def test_incident_crd_enums_are_the_vocabulary(path: str, enum: type[StrEnum]) -> None:
    assert sorted(_prop(path)["enum"]) == sorted(values(enum))


def test_manual_incidents_name_a_source_the_vocabulary_has() -> None:
    assert set(_prop("spec.source")["enum"]) <= set(values(Source))


def test_every_symptom_has_a_severity_rank() -> None:
    assert set(SEVERITY_ORDER) == set(SymptomKind)
