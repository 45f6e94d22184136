"""patch-configmap: new values for the ConfigMap's keys, or without data the known-good ones;
whoever wrote a config, it passes configcheck before it is written; undo puts the old values back."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused
from tests.fakes.cluster import MemoryCluster

from .harness import GOOD_CONFIG, act, healthy_shop, read, round_trip

BROKEN = GOOD_CONFIG.replace("order:5001", "order:5999")


def break_config(cluster: MemoryCluster) -> None:
    cluster.patch("ConfigMap", "shop", "gateway-config", "merge", {"data": {"nginx.conf": BROKEN}})


def test_without_data_the_known_good_config_is_put_back_and_undone() -> None:
    cluster = healthy_shop()
    break_config(cluster)
    action = act("patch-configmap", "ConfigMap", "gateway-config")
    assert "known-good" in actions.prepare(action, read(cluster)).summary
    before, after, undone = round_trip(cluster, action)
    assert before and after and undone
    assert after["data"]["nginx.conf"] == GOOD_CONFIG
    assert undone["data"]["nginx.conf"] == BROKEN


def test_a_key_removed_since_it_was_healthy_is_put_back_and_removed_again_on_undo() -> None:
    cluster = healthy_shop()
    cluster.patch("ConfigMap", "shop", "gateway-config", "merge", {"data": {"nginx.conf": None}})
    _, after, undone = round_trip(cluster, act("patch-configmap", "ConfigMap", "gateway-config"))
    assert after and after["data"]["nginx.conf"] == GOOD_CONFIG
    assert undone is not None and "nginx.conf" not in (undone.get("data") or {})


@pytest.mark.parametrize(("data", "reason"), [
    ({"evil.conf": "x"}, "has no key 'evil.conf'"),
    ({"nginx.conf": BROKEN}, "Service order serves port(s) 5001, not 5999"),
    ({"nginx.conf": GOOD_CONFIG.replace("proxy_pass", "proxy_passs")}, "proxy_passs"),
    ({"nginx.conf": GOOD_CONFIG.replace("order:5001", "attacker.example.com:80")}, "outside namespace"),
])
def test_a_config_that_fails_its_checks_is_refused(data: dict[str, str], reason: str) -> None:
    with pytest.raises(ActionRefused) as err:
        actions.prepare(act("patch-configmap", "ConfigMap", "gateway-config", data=data), read(healthy_shop()))
    assert reason in str(err.value)


def test_a_known_good_config_is_checked_too() -> None:
    cluster = healthy_shop()
    cluster.patch("ConfigMap", "shop", "sre-operator-known-good", "merge",
                  {"data": {"gateway-config.nginx.conf": BROKEN}})
    with pytest.raises(ActionRefused, match="not a valid config"):
        actions.prepare(act("patch-configmap", "ConfigMap", "gateway-config"), read(cluster))
    cluster.patch("ConfigMap", "shop", "sre-operator-known-good", "merge",
                  {"data": {"gateway-config.nginx.conf": None}})
    with pytest.raises(ActionRefused, match="no known-good version of configmap/gateway-config"):
        actions.prepare(act("patch-configmap", "ConfigMap", "gateway-config"), read(cluster))
