"""`make demo`: the whole product on this machine's local cluster (no Docker): the cluster, the
CRDs, Prometheus, the shop with a steady trickle of shoppers, the local language model (charts/llm,
unless an LLM key is set: then that server) and the operator (its chart, as a pod under its own
service account) watching the shop and planning with the model. Then it prints what to run next.

Idempotent: run it again to upgrade the charts. `make cluster-down` removes everything."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from localkube import netns
from localkube.cli import DEFAULT_NAME, mappings_from_kind_config
from localkube.cluster import Cluster, ClusterError

ROOT = Path(__file__).resolve().parents[1]
SHOP, OBS, OPERATOR, LLM = "shop", "observability", "sre-operator", "llm"
LLM_SECRET = "sre-operator-llm"  # noqa: S105 - the Secret's name, not a password
# llama-server's first token for a ~1,700-token prompt takes 40-60 s on two cores; more when they are busy.
LOCAL_LLM_TIMEOUT_SECONDS = 300


def step(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def main() -> int:
    try:
        netns.require_root("make demo")
    except netns.NotRoot as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    mappings = mappings_from_kind_config(ROOT / "kind-config.yaml")
    cluster = Cluster(DEFAULT_NAME, (ROOT / ".cluster" / DEFAULT_NAME).resolve(), mappings=mappings,
                      kubeconfig_out=(ROOT / ".cluster" / "kubeconfig").resolve())
    started = time.monotonic()
    if cluster.state().get("pids") and cluster.kubectl("get", "--raw=/readyz", check=False).returncode == 0:
        step(f"cluster {cluster.name} already up")
    else:
        step("starting the local cluster")
        cluster.up()
    step("CRDs")
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    jaeger = _has_binary("jaeger")
    step("Prometheus" + (" and Jaeger" if jaeger else " (Jaeger not built: `make cluster-bin` with jaeger)"))
    cluster.helm("upgrade", "--install", "observability", str(ROOT / "charts/observability"), "-n", OBS,
                 "--create-namespace", "--wait", "--timeout=5m", "--set", "cadvisor.enabled=false",
                 "--set", f"jaeger.enabled={'true' if jaeger else 'false'}", timeout=330)
    step("the shop, with shoppers")
    otlp = f"http://jaeger.{OBS}:4318" if jaeger else ""
    cluster.helm("upgrade", "--install", "shop", str(ROOT / "charts/shop"), "-n", SHOP, "--create-namespace",
                 "--wait", "--timeout=5m", "--set", "traffic.enabled=true", "--set", f"otlpEndpoint={otlp}",
                 timeout=330)
    key = os.environ.get("SRE_OPERATOR_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        step(f"the LLM at {os.environ.get('SRE_OPERATOR_LLM_BASE_URL') or 'api.openai.com'} (key from the environment)")
        llm_values = _external_llm_values()
    else:
        step("the local language model (Qwen2.5-Coder-1.5B on llama-server; no LLM key set)")
        llm_values = install_local_llm(cluster)
        key = "local"  # llama-server asks no key; the openai client needs one
    step("the operator")
    create_llm_secret(cluster, key)
    cluster.helm("upgrade", "--install", "sre-operator", str(ROOT / "charts/sre-operator"), "-n", OPERATOR,
                 "--create-namespace", "--wait", "--timeout=5m", "--set", f"watchNamespaces={{{SHOP}}}",
                 "--set", f"prometheusUrl=http://prometheus.{OBS}:9090",
                 "--set", f"jaegerUrl={f'http://jaeger.{OBS}:16686' if jaeger else ''}", *llm_values, timeout=330)
    gw, prom, dash = cluster.host_port(30080), cluster.host_port(30090), cluster.host_port(30888)
    kubeconfig = cluster.kubeconfig_out or cluster.kubeconfig
    print(f"""
demo: ready in {time.monotonic() - started:.0f}s. The shop is under steady traffic and the operator is watching it.

  export KUBECONFIG={kubeconfig}
  dashboard      http://127.0.0.1:{dash}/          (service map, incidents, the agents' log)
  shop gateway   http://127.0.0.1:{gw}/api/products
  Prometheus     http://127.0.0.1:{prom}

Break something, then watch the operator detect, plan, mitigate and validate:
  kubectl apply -n {SHOP} -f scenarios/payment-crash.yaml        # or any other file in scenarios/ (10 kinds)
  kubectl get incidents -n {SHOP} -w
  kubectl describe incident -n {SHOP}                            # the whole record: symptoms, plan, actions, validation
  kubectl get events -n {SHOP} --field-selector involvedObject.kind=Incident
  kubectl delete -n {SHOP} -f scenarios/payment-crash.yaml       # revert the fault early
  kubectl logs -n {OPERATOR} deploy/sre-operator -f              # the agents' log

The operator plans with the local model (namespace {LLM}); to use another OpenAI-compatible server:
  SRE_OPERATOR_LLM_API_KEY=... [SRE_OPERATOR_LLM_BASE_URL=...] [SRE_OPERATOR_LLM_MODEL=...] make demo
Stop everything: make cluster-down
""")
    return 0


def _has_binary(name: str) -> bool:
    from localkube.binaries import find_binary
    try:
        find_binary(name)
    except FileNotFoundError:
        return False
    return True


def _external_llm_values() -> list[str]:
    """The server the environment names (api.openai.com by default); its key is in the Secret."""
    return ["--set", f"llm.existingSecret={LLM_SECRET}",
            "--set", f"llm.baseUrl={os.environ.get('SRE_OPERATOR_LLM_BASE_URL', '')}",
            "--set", f"llm.model={os.environ.get('SRE_OPERATOR_LLM_MODEL', 'gpt-4o-mini')}"]


def install_local_llm(cluster: Cluster) -> list[str]:
    """charts/llm with the provisioned 1.5B model mounted read-only; the operator's values to use it."""
    from localkube.binaries import MODEL_1_5B, find_model
    model = find_model(MODEL_1_5B)
    cluster.helm("upgrade", "--install", LLM, str(ROOT / "charts/llm"), "-n", LLM, "--create-namespace",
                 "--wait", "--timeout=10m", "--set", f"model.hostPath={model.parent}", timeout=630)
    return ["--set", f"llm.existingSecret={LLM_SECRET}", "--set", f"llm.baseUrl=http://llm.{LLM}:8080/v1",
            "--set", "llm.model=local", "--set", f"llm.timeoutSeconds={LOCAL_LLM_TIMEOUT_SECONDS}"]


def create_llm_secret(cluster: Cluster, key: str | None = None) -> None:
    """The key (default: the environment's) goes to kubectl on stdin, inside the manifest: never on a
    command line (where `ps` and an error's quoted command would show it)."""
    key = key or os.environ.get("SRE_OPERATOR_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        cluster.kubectl("create", "namespace", OPERATOR, check=False)
        cluster.kubectl("apply", "-f", "-", input=llm_secret_manifest(key))


def llm_secret_manifest(key: str) -> str:
    """The Secret `sre-operator-llm` (key `api-key`) as JSON for `kubectl apply -f -`."""
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": LLM_SECRET, "namespace": OPERATOR},
                       "data": {"api-key": base64.b64encode(key.encode()).decode()}})


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(f"demo: {' '.join(map(str, exc.cmd))} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
        sys.exit(1)
    except (ClusterError, FileNotFoundError) as exc:  # FileNotFoundError: not provisioned, says `make cluster-bin`
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(1)
