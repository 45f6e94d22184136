"""`python -m scenarios inject N [-n NAMESPACE]`, `python -m scenarios restore [N]`,
`python -m scenarios list`: the shop's faults as FaultScenarios (`scenarios/<type>.yaml`), numbered
in the order of `FaultType`. `inject` creates the scenario (the operator injects it and reverts it
after its `duration`); `restore` deletes it, and the operator reverts it at once from its snapshot.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from sre_operator.faults import FAULTS

HERE = Path(__file__).resolve().parent
SCENARIOS = {str(i): t for i, t in enumerate(FAULTS, 1)}  # "1" → the first FaultType, …
NUMBERS = f"1..{len(SCENARIOS)}"
GROUP, VERSION, PLURAL = "sre.stratus.dev", "v1alpha1", "faultscenarios"


def listing() -> str:
    """One line per scenario: its number, its type, what it breaks."""
    width = max(len(t) for t in SCENARIOS.values())
    return "\n".join(f"{k:>2} {t:<{width}}  {FAULTS[t].summary}" for k, t in SCENARIOS.items())


def manifest(key: str) -> dict:
    name = SCENARIOS.get(key, key)
    path = HERE / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(f"{k} ({v})" for k, v in SCENARIOS.items())
        raise SystemExit(f"unknown scenario {key!r}: one of {known}")
    return yaml.safe_load(path.read_text())


def api() -> client.CustomObjectsApi:
    default = Path(".cluster/kubeconfig")
    path = os.environ.get("KUBECONFIG") or (str(default) if default.exists() else None)
    config.load_kube_config(config_file=path)
    return client.CustomObjectsApi()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scenarios", description=f"{__doc__}\n{listing()}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["inject", "restore", "list"])
    p.add_argument("scenario", nargs="?", help=f"{NUMBERS} or a scenario name (restore: all when omitted)")
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
            p.error(f"inject needs a scenario: {NUMBERS}")
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
