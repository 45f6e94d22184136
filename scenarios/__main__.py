"""`python -m scenarios inject 1..10 [-n NAMESPACE]`, `python -m scenarios restore [1..10]`,
`python -m scenarios list`: the shop's faults as FaultScenarios. `inject` creates the
scenario (the operator injects it and reverts it after its `duration`); `restore` deletes it, and the
operator reverts it at once from its snapshot.

1 bad-gateway-config  the gateway's NGINX config points at dead upstreams → 502
2 payment-crash       payment goes into a failed state → orders cannot be paid
3 product-overload    product answers 800 ms slower → P95 latency far above its SLO
4 bad-rollout         a new payment revision crashes; the rollout stalls
5 bad-env             order's payment URL is wrong → every order fails
6 scale-to-zero       product scaled to 0 replicas
7 route-removed       the gateway loses its /api/products route → 404 from NGINX itself
8 service-selector-mismatch  payment's Service selects no pod → orders cannot be paid
9 real-overload       a load generator sends more than product can serve → queueing, high P95
10 memory-leak        a product revision leaks memory → OOM kills, restarts
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

HERE = Path(__file__).resolve().parent
SCENARIOS = {"1": "bad-gateway-config", "2": "payment-crash", "3": "product-overload", "4": "bad-rollout",
             "5": "bad-env", "6": "scale-to-zero", "7": "route-removed", "8": "service-selector-mismatch",
             "9": "real-overload", "10": "memory-leak"}
GROUP, VERSION, PLURAL = "sre.stratus.dev", "v1alpha1", "faultscenarios"


def manifest(key: str) -> dict:
    name = SCENARIOS.get(key, key)
    path = HERE / f"{name}.yaml"
    if not path.exists():
        raise SystemExit(f"unknown scenario {key!r}: one of {', '.join(f'{k} ({v})' for k, v in SCENARIOS.items())}")
    return yaml.safe_load(path.read_text())


def api() -> client.CustomObjectsApi:
    default = Path(".cluster/kubeconfig")
    path = os.environ.get("KUBECONFIG") or (str(default) if default.exists() else None)
    config.load_kube_config(config_file=path)
    return client.CustomObjectsApi()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scenarios", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["inject", "restore", "list"])
    p.add_argument("scenario", nargs="?", help="1..10 or a scenario name (restore: all when omitted)")
    p.add_argument("-n", "--namespace", default="default")
    args = p.parse_args(argv)
    custom = api()
    if args.command == "list":
        items = custom.list_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL)["items"]
        for it in items:
            st = it.get("status") or {}
            print(f"{it['metadata']['name']:<24} {it['spec']['type']:<20} {st.get('phase', '-'):<10} "
                  f"{st.get('message', '')[:80]}")
        return 0
    if args.command == "inject":
        if not args.scenario:
            p.error("inject needs a scenario: 1..6")
        body = manifest(args.scenario)
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, body)
        except ApiException as exc:
            print(f"scenarios: {exc.status} {exc.reason}: {exc.body}", file=sys.stderr)
            return 1
        print(f"created faultscenario/{body['metadata']['name']} in {args.namespace}; "
              f"watch: kubectl get faultscenarios,incidents -n {args.namespace} -w")
        return 0
    names = [manifest(args.scenario)["metadata"]["name"]] if args.scenario else [
        it["metadata"]["name"] for it in custom.list_namespaced_custom_object(GROUP, VERSION, args.namespace,
                                                                              PLURAL)["items"]]
    for name in names:
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, name)
            print(f"deleted faultscenario/{name}: the operator reverts it from its snapshot")
        except ApiException as exc:
            if exc.status != 404:
                raise
            print(f"faultscenario/{name} is not there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
