"""FaultScenarios against the shop really running on the local cluster, with the operator run by
kopf's KopfRunner: each seed fault is injected through the Kubernetes API, visibly breaks the shop,
and is reverted from its snapshot after its duration, on delete, and after an operator restart."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from kopf.testing import KopfRunner

from localkube.cluster import Cluster
from localkube.testing import shop_namespace, wait_for

OPERATOR_ARGS = ["run", "--standalone", "--all-namespaces", "-m", "sre_operator.handlers.faultscenarios"]


@pytest.fixture(scope="module")
def shop(cluster: Cluster, crds: Cluster) -> Iterator[str]:
    with shop_namespace(cluster) as ns:
        yield ns


@contextmanager
def operator(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    from sre_operator.adapters import kube
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    kube.load_config()
    with KopfRunner(OPERATOR_ARGS) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert "Traceback" not in runner.output, runner.output


def scenario(cluster: Cluster, ns: str, name: str) -> dict:
    out = cluster.kubectl("get", "faultscenario", name, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def phase(cluster: Cluster, ns: str, name: str) -> str:
    return scenario(cluster, ns, name).get("status", {}).get("phase", "")


def env_of(cluster: Cluster, ns: str, deploy: str) -> dict[str, str]:
    d = json.loads(cluster.kubectl("get", "deploy", deploy, "-n", ns, "-o", "json").stdout)
    return {e["name"]: e.get("value", "") for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def order_status(cluster: Cluster) -> int:
    try:
        return httpx.post(f"http://127.0.0.1:{cluster.host_port(30080)}/api/orders", timeout=10,
                          json={"product_id": "P002", "qty": 1, "customer_name": "t"}).status_code
    except httpx.HTTPError:
        return 0


def rolled_out(cluster: Cluster, ns: str, deploy: str) -> None:
    cluster.kubectl("rollout", "status", f"deployment/{deploy}", "-n", ns, "--timeout=120s", timeout=130)


def apply_fs(cluster: Cluster, ns: str, name: str, spec: str) -> None:
    cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\n"
                  f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def test_payment_crash_is_injected_and_reverted_after_its_duration(
        cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    original = env_of(cluster, shop, "payment")
    with operator(cluster, monkeypatch):
        apply_fs(cluster, shop, "crash", "  type: payment-crash\n  target: {name: payment}\n  duration: 25s\n")
        wait_for(lambda: phase(cluster, shop, "crash") == "Injected", 30, "Injected")
        assert env_of(cluster, shop, "payment")["SHOP_FAULT_CRASHED"] == "true"
        wait_for(lambda: order_status(cluster) != 201, 60, "orders to fail while payment is crashed")
        wait_for(lambda: phase(cluster, shop, "crash") == "Reverted", 60, "Reverted after the duration")
        wait_for(lambda: not scenario(cluster, shop, "crash")["metadata"].get("finalizers"), 30,
                 "the finalizer to go once reverted")
    fs = scenario(cluster, shop, "crash")
    assert fs["status"]["targets"][0]["phase"] == "Reverted"
    assert fs["status"]["reason"] == "DurationElapsed"
    assert env_of(cluster, shop, "payment") == original
    strategy = cluster.kubectl("get", "deploy", "payment", "-n", shop, "-o", "jsonpath={.spec.strategy.type}").stdout
    assert strategy == "RollingUpdate"
    rolled_out(cluster, shop, "payment")
    wait_for(lambda: order_status(cluster) == 201, 60, "orders to succeed again")


def test_bad_gateway_config_gives_502_until_the_scenario_is_deleted(
        cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def config() -> str:
        return cluster.kubectl("get", "configmap", "gateway-config", "-n", shop,
                               "-o", "jsonpath={.data.nginx\\.conf}").stdout
    original = config()
    with operator(cluster, monkeypatch):
        apply_fs(
            cluster,
            shop,
            "badgw",
            "  type: bad-gateway-config\n  target: {kind: ConfigMap, name: gateway-config}\n"
            "  duration: 10m\n",
        )
        wait_for(lambda: phase(cluster, shop, "badgw") == "Injected", 30, "Injected")
        assert config() != original and ":5999" in config()
        rolled_out(cluster, shop, "gateway")
        wait_for(lambda: order_status(cluster) == 502, 60, "502 from the gateway")
        cluster.kubectl("delete", "faultscenario", "badgw", "-n", shop, "--timeout=60s")
    assert config() == original
    rolled_out(cluster, shop, "gateway")
    wait_for(lambda: order_status(cluster) == 201, 60, "orders through the gateway again")


def test_product_overload_slows_products_and_survives_an_operator_restart(
        cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = f"http://127.0.0.1:{cluster.host_port(30080)}"

    def products_latency() -> float:
        t = time.perf_counter()
        httpx.get(f"{base}/api/products", timeout=10)
        return time.perf_counter() - t
    with operator(cluster, monkeypatch):
        apply_fs(cluster, shop, "slow", "  type: product-overload\n"
                                       "  target: {selector: {matchLabels: {app.kubernetes.io/name: product}}}\n"
                                       "  duration: 30s\n  parameters: {latencyMs: 700}\n")
        wait_for(lambda: phase(cluster, shop, "slow") == "Injected", 30, "Injected")
    # The operator is down while the fault is in place; a new one reverts it when it is due.
    assert env_of(cluster, shop, "product")["SHOP_FAULT_LATENCY_MS"] == "700"
    rolled_out(cluster, shop, "product")
    wait_for(lambda: products_latency() > 0.6, 60, "slow product responses")
    with operator(cluster, monkeypatch):
        wait_for(lambda: phase(cluster, shop, "slow") == "Reverted", 60, "Reverted by the new operator")
    assert "SHOP_FAULT_LATENCY_MS" not in env_of(cluster, shop, "product")
    rolled_out(cluster, shop, "product")
    wait_for(lambda: products_latency() < 0.5, 60, "fast product responses again")


def test_a_scenario_that_cannot_be_injected_fails_with_a_reason(
        cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with operator(cluster, monkeypatch):
        apply_fs(cluster, shop, "ghost", "  type: payment-crash\n  target: {name: no-such-deployment}\n")
        apply_fs(
            cluster,
            shop,
            "elsewhere",
            "  type: payment-crash\n  target: {name: payment, namespace: kube-system}\n",
        )
        apply_fs(
            cluster,
            shop,
            "wrongkind",
            "  type: payment-crash\n  target: {kind: ConfigMap, name: gateway-config}\n",
        )
        for name, words in (("ghost", "no object matches"), ("elsewhere", "not the scenario's"),
                            ("wrongkind", "targets a Deployment")):
            wait_for(lambda n=name: phase(cluster, shop, n) == "Failed", 30, f"{name} Failed")
            st = scenario(cluster, shop, name)["status"]
            assert words in st["message"]
            assert st["conditions"][0]["reason"] == "InvalidScenario"
        # The operator is still working: a good scenario next to the broken ones is injected.
        apply_fs(cluster, shop, "fine", "  type: payment-crash\n  target: {name: payment}\n  duration: 1s\n")
        wait_for(lambda: phase(cluster, shop, "fine") == "Reverted", 60, "the good one to run its course")
        for name in ("ghost", "elsewhere", "wrongkind", "fine"):
            cluster.kubectl("delete", "faultscenario", name, "-n", shop, "--timeout=60s")
    rolled_out(cluster, shop, "payment")


def test_the_scenarios_cli_applies_and_removes_every_scenario(cluster: Cluster, crds: Cluster,
                                                                   namespace: str) -> None:
    import os
    import subprocess
    import sys

    from localkube.testing import ROOT

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scenarios", *args, "-n", namespace], cwd=ROOT, text=True,
                              capture_output=True, env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
                              check=False)
    all_ten = ("bad-gateway-config", "payment-crash", "product-overload", "bad-rollout", "bad-env", "scale-to-zero",
               "route-removed", "service-selector-mismatch", "real-overload", "memory-leak")
    for key in range(1, 11):
        out = cli("inject", str(key))
        assert out.returncode == 0, out.stderr
    listed = cli("list").stdout
    assert all(n in listed for n in all_ten)
    unknown = cli("inject", "11")
    assert unknown.returncode != 0 and "unknown scenario" in unknown.stderr
    assert cli("restore", "2").returncode == 0
    names = cluster.kubectl("get", "faultscenarios", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == sorted(f"faultscenario.sre.stratus.dev/{n}" for n in all_ten if n != "payment-crash")
    assert cli("restore").returncode == 0
    assert cluster.kubectl("get", "faultscenarios", "-n", namespace, "-o", "name").stdout.strip() == ""
