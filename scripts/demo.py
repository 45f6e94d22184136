"""`make demo`: the whole product on this machine's local cluster (no Docker): the cluster, the
CRDs, Prometheus, the shop with a steady trickle of shoppers, the local language model (charts/llm,
unless an LLM key is set: then that server) and the operator (its chart, as a pod under its own
service account) watching the shop and planning with the model. Then it prints what to run next.

The demo does not wait for the local model: when llama-server or the model is not in the cache yet
(a cold llama-server build takes half an hour on 2 cores), the operator starts on the rules planner
and a background process (`demo.py --build-model`, at the lowest CPU priority, tied to the cluster so
`make cluster-down` stops it) builds both, then installs charts/llm and switches the operator to it.
Its log and its one-line result are in the cluster's logs dir (MODEL_LOG, MODEL_RESULT).

Idempotent: run it again to upgrade the charts. `make cluster-down` removes everything."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from localkube import binaries, netns, provision
from localkube.cli import DEFAULT_NAME, mappings_from_kind_config
from localkube.cluster import Cluster, ClusterError

ROOT = Path(__file__).resolve().parents[1]
SHOP, OBS, OPERATOR, LLM = "shop", "observability", "sre-operator", "llm"
LLM_SECRET = "sre-operator-llm"  # noqa: S105 - the Secret's name, not a password
# llama-server's first token for a ~1,700-token prompt takes 40-60 s on two cores; more when they are busy.
LOCAL_LLM_TIMEOUT_SECONDS = 300
# The background build of the local model: its name among the cluster's adopted process groups, its log
# and its result (one line: `building since …`, `failed: <reason>` or `done: …`) in the cluster's logs dir.
MODEL_BUILD = "demo-model"
MODEL_LOG, MODEL_RESULT = "demo-model.log", "demo-model.result"
# Until the model is there (or with none): the rules alone, said so in the operator's own values.
RULES_VALUES = ["--set", "planner=rules"]


def step(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def main() -> int:
    try:
        netns.require_root("make demo")
    except netns.NotRoot as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    cluster = demo_cluster()
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
    step("Prometheus" + (" and Jaeger" if jaeger else " (no Jaeger: not built; `make cluster-bin` builds it, "
                                                      "then `make demo` again adds it)"))
    cluster.helm("upgrade", "--install", "observability", str(ROOT / "charts/observability"), "-n", OBS,
                 "--create-namespace", "--wait", "--timeout=5m", "--set", "cadvisor.enabled=false",
                 "--set", f"jaeger.enabled={'true' if jaeger else 'false'}", timeout=330)
    step("the shop, with shoppers")
    otlp = f"http://jaeger.{OBS}:4318" if jaeger else ""
    cluster.helm("upgrade", "--install", "shop", str(ROOT / "charts/shop"), "-n", SHOP, "--create-namespace",
                 "--wait", "--timeout=5m", "--set", "traffic.enabled=true", "--set", f"otlpEndpoint={otlp}",
                 timeout=330)
    key = os.environ.get("SRE_OPERATOR_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    server = (os.environ.get("SRE_OPERATOR_LLM_BASE_URL") or "api.openai.com") if key else None
    plan = llm_plan(server, model_cached(), cluster.adopted(MODEL_BUILD), last_model_result(cluster.layout.logs))
    step(plan.say)
    if plan.use == "external":
        llm_values = _external_llm_values()
    elif plan.use == "local":
        llm_values = install_local_llm(cluster)
        key = "local"  # llama-server asks no key; the openai client needs one
    else:
        llm_values = RULES_VALUES
    step("the operator" + (" (rules planner)" if plan.use == "rules" else ""))
    create_llm_secret(cluster, key)
    cluster.helm("upgrade", "--install", "sre-operator", str(ROOT / "charts/sre-operator"), "-n", OPERATOR,
                 "--create-namespace", "--wait", "--timeout=5m", "--set", f"watchNamespaces={{{SHOP}}}",
                 "--set", f"prometheusUrl=http://prometheus.{OBS}:9090",
                 "--set", f"jaegerUrl={f'http://jaeger.{OBS}:16686' if jaeger else ''}", *llm_values, timeout=330)
    if plan.start_build:
        pid = start_model_build(cluster)
        step(f"building the local model in the background (pid {pid}, lowest CPU priority): "
             f"{cluster.layout.logs / MODEL_LOG}")
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

{planner_note(plan, cluster.layout.logs)}
To use another OpenAI-compatible server:
  SRE_OPERATOR_LLM_API_KEY=... [SRE_OPERATOR_LLM_BASE_URL=...] [SRE_OPERATOR_LLM_MODEL=...] make demo
Stop everything{" (the background build too)" if plan.use == "rules" else ""}: make cluster-down
""")
    return 0


def demo_cluster() -> Cluster:
    mappings = mappings_from_kind_config(ROOT / "kind-config.yaml")
    return Cluster(DEFAULT_NAME, (ROOT / ".cluster" / DEFAULT_NAME).resolve(), mappings=mappings,
                   kubeconfig_out=(ROOT / ".cluster" / "kubeconfig").resolve())


class LlmPlan(NamedTuple):
    use: str  # external (the key's server), local (the cached model, now) or rules (until the model is built)
    start_build: bool  # start the background build of the local model
    say: str  # the demo's step line


def llm_plan(server: str | None, cached: bool, building: int | None, last_result: str) -> LlmPlan:
    """What the operator plans with, from: the LLM server of a key in the environment (None: no key), the
    local model (llama-server and the 1.5B) complete in the cache, the pid of a background build still
    running, and that build's last result line."""
    if server:
        return LlmPlan("external", False, f"the LLM at {server} (key from the environment)")
    if cached:
        return LlmPlan("local", False, "the local language model (Qwen2.5-Coder-1.5B on llama-server; no LLM key set)")
    head = "the operator starts on the rules planner (no LLM key set; the local model is not built yet)"
    if building:
        return LlmPlan("rules", False, f"{head}: its background build (pid {building}) is still running")
    if last_result.startswith("failed:"):
        return LlmPlan("rules", True, f"{head}: its last background build {last_result}; trying again")
    return LlmPlan("rules", True, head)


def planner_note(plan: LlmPlan, logs: Path) -> str:
    """The closing lines on what the operator plans with."""
    if plan.use == "external":
        return "The operator plans with the LLM of your key (hybrid: rules first, the model when none match)."
    if plan.use == "local":
        return (f"The operator plans with the local model (namespace {LLM}; hybrid: rules first, the model when "
                "none match).")
    return f"""The operator plans with the RULES PLANNER for now: no LLM key is set, the local model is not built yet.
It is being built in the background at the lowest CPU priority (llama-server from source: about 30 min on
2 cores; the model: about 2 min); then it is installed (namespace {LLM}) and the operator switches to it by itself:
  tail -f {logs / MODEL_LOG}                # progress
  cat {logs / MODEL_RESULT}                 # building / done / failed: <reason>"""


def model_cached() -> bool:
    return binaries.LLAMA_SERVER.complete() and binaries.MODEL_1_5B.complete()


def last_model_result(logs: Path) -> str:
    try:
        return (logs / MODEL_RESULT).read_text().strip()
    except FileNotFoundError:
        return ""


def start_model_build(cluster: Cluster, argv: list[str] | None = None) -> int:
    """`demo.py --build-model` (or `argv`) as a detached process in its own session (stdin closed, output to
    its log), adopted by the cluster so that `make cluster-down` stops it and everything it started."""
    argv = argv or [sys.executable, str(Path(__file__).resolve()), "--build-model"]
    logs = cluster.layout.logs
    logs.mkdir(parents=True, exist_ok=True)
    (logs / MODEL_RESULT).write_text(f"building since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    with open(logs / MODEL_LOG, "ab") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    cluster.adopt(MODEL_BUILD, proc.pid)
    return proc.pid


def build_model(cluster: Cluster, logs: Path,
                provide: Callable[[list[str]], None] = provision.provision) -> bool:
    """The background build: provision llama-server and the 1.5B (`provide`), then install charts/llm and
    upgrade the operator's release to it, unless the operator no longer waits for it (its planner is not
    `rules` any more: a later `make demo` with a key). Its result is one line in MODEL_RESULT and last in the
    log; on a failure the operator stays on the rules planner."""
    started = time.monotonic()
    try:
        provide(list(provision.DEMO_MODEL))
        given = cluster.helm("get", "values", "sre-operator", "-n", OPERATOR, "-o", "json").stdout
        planner = (json.loads(given or "null") or {}).get("planner", "hybrid")
        if planner != "rules":
            return _model_result(logs, f"done: the model is built; the operator was left as it is (planner "
                                       f"{planner!r}: it no longer waits for the model)")
        print("demo-model: installing charts/llm", flush=True)
        llm_values = install_local_llm(cluster)
        create_llm_secret(cluster, "local")
        print("demo-model: switching the operator to the local model", flush=True)
        cluster.helm("upgrade", "sre-operator", str(ROOT / "charts/sre-operator"), "-n", OPERATOR,
                     "--reset-then-reuse-values", "--wait", "--timeout=5m", *llm_values, timeout=330)
    except (provision.ProvisionError, ClusterError, OSError, ValueError, subprocess.SubprocessError) as exc:
        reason = " ".join(str(exc).split())[:300]
        return _model_result(logs, f"failed: {reason} (the operator stays on the rules planner; "
                                   "`make demo` tries again)")
    return _model_result(logs, f"done in {time.monotonic() - started:.0f}s: the operator plans with the local model "
                               f"(namespace {LLM})")


def _model_result(logs: Path, line: str) -> bool:
    print(f"demo-model: {line}", flush=True)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / MODEL_RESULT).write_text(line + "\n")
    return line.startswith("done")


def build_model_main() -> int:
    os.nice(19)  # the shop and the operator keep the CPU; the compilers get what is left
    cluster = demo_cluster()
    print(f"demo-model: started {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})", flush=True)
    return 0 if build_model(cluster, cluster.layout.logs) else 1


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
    return ["--set", "planner=hybrid", "--set", f"llm.existingSecret={LLM_SECRET}",
            "--set", f"llm.baseUrl=http://llm.{LLM}:8080/v1", "--set", "llm.model=local",
            "--set", f"llm.timeoutSeconds={LOCAL_LLM_TIMEOUT_SECONDS}"]


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
        sys.exit(build_model_main() if sys.argv[1:] == ["--build-model"] else main())
    except subprocess.CalledProcessError as exc:
        print(f"demo: {' '.join(map(str, exc.cmd))} failed:\n{exc.stderr or exc.stdout}", file=sys.stderr)
        sys.exit(1)
    except (ClusterError, FileNotFoundError) as exc:  # FileNotFoundError: not provisioned, says `make cluster-bin`
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(1)
