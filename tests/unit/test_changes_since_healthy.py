"""What changed since the last healthy copy: each kind of change a person or a deploy makes is
named, and nothing is claimed where nothing changed or nothing is on record."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from sre_operator.detection.changes import diff
from tests.fakes.cluster import deployment, service


def _edit(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    cur: Any = out
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return out


CTR = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(("path", "value", "field"), [
    ([*CTR, "image"], "sre-operator/shop-payment:9.9.9", "containers[payment].image"),
    ([*CTR, "command"], ["false"], "containers[payment].command"),
    ([*CTR, "args"], ["--port", "1"], "containers[payment].args"),
    ([*CTR, "env"], [{"name": "SHOP_PAYMENT_URL", "value": "http://x:1"}], "containers[payment].env"),
    ([*CTR, "readinessProbe"], {"httpGet": {"path": "/nope", "port": 5003}}, "containers[payment].readinessProbe"),
    ([*CTR, "resources"], {"limits": {"memory": "8Mi"}}, "containers[payment].resources"),
    (["spec", "template", "spec", "nodeSelector"], {"disk": "ssd"}, "spec.template.spec.nodeSelector"),
    (["spec", "replicas"], 0, "spec.replicas"),
])
def test_a_deployment_change_is_named_by_its_field(path: list[Any], value: Any, field: str) -> None:
    good = deployment("payment", env={"SHOP_PAYMENT_URL": "http://payment:5003"})
    changes = diff("Deployment", "payment", _edit(good, path, value), good)
    assert [c.field.endswith(field) for c in changes] == [True], changes
    assert changes[0].describe().startswith("Deployment/payment ")


def test_the_same_env_in_another_order_is_no_change() -> None:
    good = deployment("order", env={"A": "1", "B": "2"})
    now = _edit(good, [*CTR, "env"], list(reversed(good["spec"]["template"]["spec"]["containers"][0]["env"])))
    assert diff("Deployment", "order", now, good) == []


def test_a_deleted_object_is_missing_and_one_without_a_healthy_copy_claims_nothing() -> None:
    good = service("payment", 5003)
    (gone,) = diff("Service", "payment", None, good)
    assert gone.missing and "no longer exists" in gone.describe()
    assert diff("Service", "payment", None, None) == []
    assert diff("Service", "payment", good, None) == []


def test_service_selector_and_target_port_changes() -> None:
    good = service("payment", 5003)
    moved = _edit(good, ["spec", "selector"], {"app.kubernetes.io/name": "payment-v2"})
    assert [c.field for c in diff("Service", "payment", moved, good)] == ["spec.selector"]
    port = _edit(good, ["spec", "ports", 0, "targetPort"], 5999)
    (change,) = diff("Service", "payment", port, good)
    assert change.field == "spec.ports" and "5999" in change.after


def test_config_map_keys_changed_added_and_removed() -> None:
    good = {"metadata": {"name": "gateway-config"}, "data": {"nginx.conf": "a", "extra": "x"}}
    now = {"metadata": {"name": "gateway-config"}, "data": {"nginx.conf": "b", "new": "y"}}
    fields = [c.field for c in diff("ConfigMap", "gateway-config", now, good)]
    assert fields == ["data[extra]", "data[new]", "data[nginx.conf]"]


def test_long_values_are_shortened() -> None:
    good = {"data": {"k": "x" * 5000}}
    (change,) = diff("ConfigMap", "c", {"data": {"k": "y" * 5000}}, good)
    assert len(change.before) <= 300 and change.before.endswith("…")
