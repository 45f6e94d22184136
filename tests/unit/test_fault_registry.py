"""The fault registry and the vocabulary agree with each other and with the FaultScenario CRD (both
copies): one module and one SPEC per FaultType, the CRD's enums equal to the enums they mirror."""
from __future__ import annotations

import importlib
import pkgutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre_operator import faults
from sre_operator.domain.vocabulary import (
    FaultCondition,
    FaultMode,
    FaultPhase,
    FaultType,
    HookState,
    SelectorMode,
    TargetKind,
    values,
)
from sre_operator.faults import FAULTS, FaultSpec

ROOT = Path(__file__).resolve().parents[2]
CRD_COPIES = [ROOT / "crds" / "faultscenarios.sre.stratus.dev.yaml",
              ROOT / "charts" / "sre-operator" / "crds" / "faultscenarios.sre.stratus.dev.yaml"]


def specs_in_package() -> list[FaultSpec]:
    out = []
    for info in pkgutil.iter_modules(faults.__path__):
        module = importlib.import_module(f"sre_operator.faults.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, FaultSpec):
            out.append(spec)
            assert info.name == spec.type.value.replace("-", "_"), f"{info.name} holds {spec.type}'s SPEC"
        else:
            assert info.name in faults.SUPPORT_MODULES, f"{info.name}: neither a fault type nor support"
    return out


def test_every_fault_type_has_exactly_one_spec() -> None:
    counts = Counter(s.type for s in specs_in_package())
    assert counts == Counter(set(FaultType)), counts
    assert list(FAULTS) == list(FaultType)
    assert all(FAULTS[t].type == t and FAULTS[t].kinds and FAULTS[t].summary for t in FaultType)


def test_unknown_fault_types_are_refused_by_name() -> None:
    with pytest.raises(faults.FaultError, match="'disk-full' is not implemented"):
        faults.spec_of("disk-full")


@pytest.fixture(params=CRD_COPIES, ids=["crds", "chart"])
def schema(request: pytest.FixtureRequest) -> dict[str, Any]:
    doc = yaml.safe_load(Path(request.param).read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_the_chart_carries_the_same_crd() -> None:
    assert CRD_COPIES[0].read_text() == CRD_COPIES[1].read_text()


def test_the_crd_spec_enums_are_the_vocabulary(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["type"]["enum"] == values(FaultType)
    assert spec["mode"]["enum"] == values(SelectorMode)
    assert spec["parameters"]["properties"]["mode"]["enum"] == values(FaultMode)
    kinds = set(spec["target"]["properties"]["kind"]["enum"])
    assert kinds == set().union(*(s.kinds for s in FAULTS.values()))  # exactly the kinds some fault targets
    assert kinds <= set(TargetKind)


def test_the_crd_status_enums_are_the_vocabulary(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == values(FaultPhase)
    record_phases = status["targets"]["items"]["properties"]["phase"]["enum"]
    assert set(record_phases) == set(FaultPhase) - {FaultPhase.REVERTING}
    assert status["targets"]["items"]["properties"]["pods"]["items"]["properties"]["phase"]["enum"] == \
        values(HookState)
    assert status["conditions"]["items"]["properties"]["type"]["enum"] == values(FaultCondition)


def test_only_the_seeds_runtime_faults_have_a_runtime_mode() -> None:
    runtime = {t for t, spec in FAULTS.items() if FaultMode.RUNTIME in spec.plans()}
    assert runtime == {FaultType.PAYMENT_CRASH, FaultType.PRODUCT_OVERLOAD}
    assert all(FaultMode.ROLLOUT in spec.plans() for spec in FAULTS.values())


def test_every_fault_type_has_a_scenario_manifest() -> None:
    for t in FaultType:
        doc = yaml.safe_load((ROOT / "scenarios" / f"{t.value}.yaml").read_text())
        assert doc["spec"]["type"] == t.value


def test_the_scenarios_cli_numbers_every_fault_type_in_order() -> None:
    from scenarios.__main__ import NUMBERS, SCENARIOS, listing, manifest
    assert list(SCENARIOS.values()) == list(FaultType) and f"1..{len(FaultType)}" == NUMBERS
    assert all(manifest(k)["spec"]["type"] == t for k, t in SCENARIOS.items())
    assert all(f"{k:>2} {t}" in listing() for k, t in SCENARIOS.items())
