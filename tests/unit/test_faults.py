"""FaultScenario planning, pure: target modes, durations, the broken gateway config, plans and
the patches that inject and revert them."""
from __future__ import annotations

import pytest

from sre_operator import faults

CONF = "upstream order_service { server order:5001; keepalive 16; }\nupstream p { server payment:5003; }\n"


def deploy(name: str, env: list[dict] | None = None) -> dict:
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                     "template": {"spec": {"containers": [{"name": name, "env": env or []}],
                                           "volumes": [{"name": "c", "configMap": {"name": "gateway-config"}}]
                                           if name == "gateway" else []}}}}


def configmap(text: str, key: str = "nginx.conf") -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": "gateway-config", "namespace": "shop"},
            "data": {key: text}}


def fs(ftype: str, **params: object) -> dict:
    return {"metadata": {"name": "x", "namespace": "shop", "uid": "u"},
            "spec": {"type": ftype, "target": {"name": "t"}, "parameters": params}}


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25),
                                           ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert faults.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1h 5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(faults.FaultError):
        faults.parse_duration(text)


def test_modes_pick_like_chaos_mesh() -> None:
    objs = [deploy(f"d{i}") for i in range(10)]
    assert len(faults.pick(objs, "one", None, "s")) == 1
    assert len(faults.pick(objs, "all", None, "s")) == 10
    assert len(faults.pick(objs, "fixed", "3", "s")) == 3
    assert len(faults.pick(objs, "fixed-percent", "25", "s")) == 2  # round(2.5) → 2, at least 1
    assert len(faults.pick(objs, "fixed-percent", "1", "s")) == 1
    assert faults.pick(objs, "fixed", "3", "s") == faults.pick(objs, "fixed", "3", "s")  # one seed, one pick
    assert faults.pick([], "all", None, "s") == []


def test_the_broken_gateway_config_points_every_upstream_at_a_dead_port() -> None:
    broken = faults.broken_gateway_config(CONF)
    assert "order:5999" in broken and "payment:5999" in broken and ":5001" not in broken
    with pytest.raises(faults.FaultError, match="no upstream"):
        faults.broken_gateway_config("events {}")


def test_plans_snapshot_what_they_change() -> None:
    cm = configmap(CONF)
    [c] = faults.plan(fs("bad-gateway-config"), [cm], [deploy("gateway"), deploy("order")])
    assert c.snapshot == {"key": "nginx.conf", "value": CONF} and c.restart == ["gateway"]
    crash = faults.plan(fs("payment-crash"), [deploy("payment", [{"name": "A", "value": "1"}])], [])[0]
    assert crash.desired["env"] == [{"name": "A", "value": "1"},
                                    {"name": "SHOP_FAULT_CRASHED", "value": "true"}]
    assert crash.snapshot["env"] == [{"name": "A", "value": "1"}]
    assert crash.desired["strategy"] == {"type": "Recreate"}
    assert crash.snapshot["strategy"]["type"] == "RollingUpdate"
    slow = faults.plan(fs("product-overload", latencyMs=800, cpuMs=20), [deploy("product")], [])[0]
    assert {e["name"]: e["value"] for e in slow.desired["env"]} == {"SHOP_FAULT_LATENCY_MS": "800",
                                                                     "SHOP_FAULT_CPU_MS": "20"}
    assert "strategy" not in slow.desired


@pytest.mark.parametrize(("ftype", "targets", "message"), [
    ("payment-crash", [], "no object matches"),
    ("payment-crash", [{"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "s"}, "data": {}}],
     "targets a Deployment"),
    ("bad-gateway-config", [deploy("gateway")], "targets a ConfigMap"),
    ("bad-gateway-config", [configmap("b", key="a")], "no \\*.conf key"),
    ("route-removed", [deploy("gateway")], "targets a ConfigMap"),
    ("route-removed", [configmap("x", key="a.conf")], "no `location /api/products`"),
    ("service-selector-mismatch", [deploy("payment")], "targets a Service"),
    ("memory-leak", [{"kind": "Service", "metadata": {"name": "c", "namespace": "s"}, "spec": {}}],
     "targets a Deployment"),
])
def test_plans_refuse_what_they_cannot_do(ftype: str, targets: list[dict], message: str) -> None:
    with pytest.raises(faults.FaultError, match=message):
        faults.plan(fs(ftype), targets, [])


def test_patches_write_desired_and_snapshot_alike() -> None:
    d = deploy("payment")
    d["spec"]["template"]["spec"]["containers"].insert(0, {"name": "sidecar"})
    ptype, ops = faults.patch_for("Deployment", d,
                                  {"container": "payment", "env": [], "strategy": {"type": "X"}})
    assert ptype == "json"
    assert ops == [{"op": "add", "path": "/spec/template/spec/containers/1/env", "value": []},
                   {"op": "add", "path": "/spec/strategy", "value": {"type": "X"}}]
    assert faults.patch_for("ConfigMap", {}, {"key": "k", "value": "v"}) == ("merge", {"data": {"k": "v"}})
    with pytest.raises(faults.FaultError, match="gone"):
        faults.patch_for("Deployment", d, {"container": "nope", "env": []})


def test_bad_rollout_bad_env_and_scale_to_zero_plan_and_revert_from_their_snapshots() -> None:
    env = [{"name": "SHOP_PORT", "value": "5001"}]
    [rollout] = faults.plan(fs("bad-rollout"), [deploy("payment", env)], [])
    assert {"name": "SHOP_FAULT_CRASHED", "value": "true"} in rollout.desired["env"]
    assert "strategy" not in rollout.desired  # a rolling update: the old pods keep serving
    [bad] = faults.plan(fs("bad-env"), [deploy("order", env)], [])
    assert {"name": "SHOP_PAYMENT_URL", "value": "http://payment:5999"} in bad.desired["env"]
    assert bad.snapshot["env"] == env
    scenario = fs("bad-env", env={"SHOP_PRODUCT_URL": "http://nowhere:1"})
    [custom] = faults.plan(scenario, [deploy("order", env)], [])
    assert {"name": "SHOP_PRODUCT_URL", "value": "http://nowhere:1"} in custom.desired["env"]
    with pytest.raises(faults.FaultError, match=r"needs parameters\.env"):
        faults.plan(fs("bad-env"), [deploy("product", env)], [])
    d = deploy("payment")
    d["spec"]["replicas"] = 2
    [zero] = faults.plan(fs("scale-to-zero"), [d], [])
    assert faults.patch_for("Deployment", d, zero.desired) == ("merge", {"spec": {"replicas": 0}})
    assert faults.patch_for("Deployment", d, zero.snapshot) == ("merge", {"spec": {"replicas": 2}})


def _gateway_conf() -> str:
    from shop.gateway import render_config
    return render_config(listen="8080", order="order:5001", product="product:5002",
                         access_log="/var/log/gateway/access.json", run_dir="/tmp")


def test_route_removed_takes_out_one_location_only() -> None:
    conf = _gateway_conf()
    cm = configmap(conf)
    [c] = faults.plan(fs("route-removed", route="/api/orders"), [cm], [deploy("gateway")])
    new = c.desired["value"]
    # The exact location goes with its `limit_except` block; the one serving an order by id stays.
    assert "location = /api/orders" not in new and "limit_except POST" not in new
    assert "location ~ ^/api/orders/" in new and "location = /api/products" in new and "location / {" in new
    assert new.count("{") == new.count("}")
    assert c.snapshot["value"] == conf and c.restart == ["gateway"]
    [default] = faults.plan(fs("route-removed"), [cm], [])
    assert "location = /api/products" not in default.desired["value"] and "/api/products" in default.change
    assert "location = /api/orders" in default.desired["value"]


def _service(name: str = "payment") -> dict:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": 5003, "targetPort": "http"}]}}


def test_service_selector_mismatch_breaks_the_selector_or_the_port_and_reverts_whole() -> None:
    svc = _service()
    [c] = faults.plan(fs("service-selector-mismatch"), [svc], [])
    assert c.desired["selector"] == {"app.kubernetes.io/instance": "shop",
                                     "app.kubernetes.io/name": "payment-v2"}
    assert c.snapshot == {"selector": svc["spec"]["selector"], "ports": svc["spec"]["ports"]}
    ptype, ops = faults.patch_for("Service", svc, c.snapshot)
    assert ptype == "json"
    assert ops[0] == {"op": "replace", "path": "/spec/selector", "value": svc["spec"]["selector"]}
    [port] = faults.plan(fs("service-selector-mismatch", targetPort=5999), [svc], [])
    assert port.desired["selector"] == svc["spec"]["selector"]
    assert port.desired["ports"][0]["targetPort"] == 5999
    assert port.snapshot["ports"][0]["targetPort"] == "http"


def test_real_overload_switches_the_load_generator_on_and_off() -> None:
    gen = deploy("loadgen", [{"name": "SHOP_TRAFFIC_RPS", "value": "80"}])
    gen["spec"]["replicas"] = 0
    [c] = faults.plan(fs("real-overload", rps=120), [gen], [])
    assert c.desired["replicas"] == 1 and {"name": "SHOP_TRAFFIC_RPS", "value": "120"} in c.desired["env"]
    assert c.snapshot["replicas"] == 0 and c.snapshot["env"] == [{"name": "SHOP_TRAFFIC_RPS", "value": "80"}]
    _, ops = faults.patch_for("Deployment", gen, c.snapshot)
    assert {"op": "replace", "path": "/spec/replicas", "value": 0} in ops


def test_memory_leak_is_a_new_revision_with_the_leak_hook() -> None:
    [c] = faults.plan(fs("memory-leak"), [deploy("product")], [])
    assert c.desired["env"] == [{"name": "SHOP_FAULT_LEAK_KB", "value": str(faults.DEFAULT_LEAK_KB)}]
    [c] = faults.plan(fs("memory-leak", leakKbPerRequest=512), [deploy("product")], [])
    assert c.desired["env"] == [{"name": "SHOP_FAULT_LEAK_KB", "value": "512"}] and c.snapshot["env"] == []


def test_fields_go_only_where_a_fault_can_put_them() -> None:
    with pytest.raises(faults.FaultError, match="do not change a Pod"):
        faults.patch_for("Pod", {}, {})
    from sre_operator.faults.changes import with_fields
    with pytest.raises(faults.FaultError, match="has no container 'gone'"):
        with_fields("Deployment", deploy("payment"), {"container": "gone", "env": []})


def test_a_whole_gateway_config_and_a_service_without_a_selector() -> None:
    [c] = faults.plan(fs("bad-gateway-config", config="events {}"), [configmap(CONF)], [])
    assert c.desired == {"key": "nginx.conf", "value": "events {}"} and "parameters.config" in c.change
    bare = {"kind": "Service", "metadata": {"name": "x", "namespace": "shop"},
            "spec": {"ports": [{"port": 1}]}}
    with pytest.raises(faults.FaultError, match="no selector or no ports"):
        faults.plan(fs("service-selector-mismatch"), [bare], [])
