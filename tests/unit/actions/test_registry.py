"""The registry: one module with one SPEC per action type of the vocabulary, and nothing else; the
shape checks every action shares; records and intents written before the registry still work."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

from sre_operator import actions
from sre_operator.actions import ACTIONS, ActionRefused, ActionSpec
from sre_operator.domain.vocabulary import ActionType, TargetKind

from .harness import act


def test_every_action_type_has_exactly_one_spec_and_every_spec_a_type() -> None:
    specs = []
    for info in pkgutil.iter_modules(actions.__path__):
        if info.name in actions.HELPERS:
            continue
        spec = getattr(importlib.import_module(f"sre_operator.actions.{info.name}"), "SPEC", None)
        assert isinstance(spec, ActionSpec), f"{info.name} has no SPEC"
        specs.append(spec.type)
    assert sorted(specs) == sorted(ActionType)  # exactly one each
    assert list(ACTIONS) == list(ActionType)
    assert all(ACTIONS[t].type is t for t in ActionType)
    assert all(set(s.kinds) <= set(TargetKind) and s.kinds and s.description for s in ACTIONS.values())


def test_the_planner_s_catalogue_lists_every_action_once() -> None:
    from sre_operator.planning.prompt import SYSTEM_PROMPT
    lines = actions.catalogue().splitlines()
    assert len(lines) == len(ActionType)
    for t, line in zip(ActionType, lines, strict=False):
        assert line.startswith(f"  - {t.value} (") and line in SYSTEM_PROMPT
    assert "scale (Deployment; replicas 1-10)" in SYSTEM_PROMPT


@pytest.mark.parametrize(("action", "reason"), [
    (act("scale", "Deployment", "p", replicas=1, namespace="kube-system"), "outside the incident's"),
    (act("restore-service", "Deployment", "payment"), "acts on Service, not Deployment"),
    (act("rollback", "Deployment", "p"), "rollback needs revision"),
])
def test_the_shape_is_checked_the_same_way_for_every_action(action: object, reason: str) -> None:
    with pytest.raises(ActionRefused, match=reason):
        actions.check(action, "shop")  # type: ignore[arg-type]


def test_an_unknown_type_is_refused_wherever_it_comes_from() -> None:
    with pytest.raises(ActionRefused, match="not in the allowlist"):
        actions.undo_of({"type": "delete-namespace", "target": {"kind": "Namespace", "name": "shop"}, "undo": {}})


def test_records_written_before_the_registry_are_still_undone_and_recognised() -> None:
    # An intent without its action type, its body under `patch`: judged by verb and patch.
    legacy = {"verb": "patch", "patchType": "merge", "patch": {"spec": {"replicas": 3}}}
    assert actions.took_effect(legacy, {"spec": {"replicas": 3}})
    assert not actions.took_effect(legacy, {"spec": {"replicas": 1}})
    undo = actions.undo_of({"type": "scale", "target": {"kind": "Deployment", "namespace": "shop", "name": "p"},
                            "undo": {"replicas": 2}})
    assert undo is not None
    assert (undo.verb, undo.patch_type, undo.body, undo.namespace) == ("patch", "merge", {"spec": {"replicas": 2}},
                                                                       "shop")
