"""Runs the benchmark: a fresh local cluster, the shop (fault hooks on, stock fresh), Prometheus, the
benchmark's shoppers, and for each run the operator as a separate process with its default settings.

One run: quiet (healthy traffic, operator off) → operator on → baseline window → inject → read every
`poll_seconds` (the case's effect check, the Incidents) until healed is established or the timeout →
judge → delete the FaultScenario (the operator reverts it) → stop the operator → delete its Incidents →
restore the namespace to the state it had before the first run (`golden`) → replace pods left with a
runtime fault. The control run has no fault: every Incident and every change is a false positive."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from localkube import netns
from localkube.cluster import Cluster, PortMapping
from localkube.testing import helm_install, leftovers

from . import collateral as coll
from . import oracle
from . import policy as pol
from . import slo as slomod
from .cases import Case
from .kube import Kube
from .objects import Snapshot, state
from .podnet import PodNet
from .policy import Policy
from .settings import Settings
from .traffic import Shoppers

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ("gateway", "order", "product", "payment")
OPERATOR_ENV = ("KUBECONFIG", "SRE_OPERATOR_WATCH_NAMESPACES", "SRE_OPERATOR_PROMETHEUS_URL")


def restocks(product: dict | None) -> bool:
    """Whether the product service refills low stock: its Deployment's `SHOP_RESTOCK_BELOW` (the
    shop's default, 10, when unset; 0: never). No Deployment: it cannot be said to."""
    if not product:
        return False
    containers = (((product.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    env = {e.get("name"): e.get("value") for c in containers for e in c.get("env") or []}
    return str(env.get("SHOP_RESTOCK_BELOW", "10")).strip() not in ("0", "")


def save(checkpoint: Path | None, control: dict | None, results: list[dict]) -> None:
    if checkpoint is not None:
        checkpoint.write_text(json.dumps({"partial": True, "control": control, "runs": results}, default=str) + "\n")


def log(msg: str) -> None:
    print(f"bench: {msg}", flush=True)


class RunContext:
    """What a case's injection may use (cases.Ctx)."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube, self.settings, self.namespace = kube, settings, kube.namespace
        self.scenario: str | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.kube.kubectl(*args, stdin=stdin)

    def fault_scenario(self, ftype: str, target: dict, parameters: dict | None = None) -> None:
        name = f"fs-{uuid.uuid4().hex[:6]}"
        spec: dict = {"type": ftype, "target": target, "mode": "all", "duration": self.settings.fault_duration}
        if parameters:
            spec["parameters"] = parameters
        body = {"apiVersion": "sre.stratus.dev/v1alpha1", "kind": "FaultScenario",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        self.kube.kubectl("create", "-f", "-", stdin=json.dumps(body))
        self.scenario = name
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st = json.loads(self.kube.kubectl("get", "faultscenario", name, "-o", "json")).get("status") or {}
            if st.get("phase") == "Injected":
                return
            if st.get("phase") == "Failed":
                raise RuntimeError(f"FaultScenario {ftype} failed: {st.get('message')}")
            time.sleep(0.5)
        raise RuntimeError(f"FaultScenario {ftype} not injected after 60 s")

    def pods(self, workload: str) -> list[dict]:
        return self.kube.pods(workload)

    def pod_post(self, ip: str, port: int, path: str, body: dict | None = None) -> int:
        assert self.kube.podnet is not None
        return self.kube.podnet.request("POST", f"http://{ip}:{port}{path}", body)[0]


class Bench:
    def __init__(self, settings: Settings, data: Path, policy: Policy | None = None) -> None:
        self.settings, self.data = settings, data
        self.policy = policy or Policy()
        mappings = [PortMapping(0, 30080), PortMapping(0, 30090)]
        if self.policy.model:  # the model server on 127.0.0.1 alone, for the operator on the host
            mappings.append(PortMapping(0, pol.LLM_NODE_PORT))
        self.cluster = Cluster("b" + uuid.uuid4().hex[:5], data, mappings=mappings)
        self.model_url: str | None = None
        self.model_path: str | None = None
        self.model_served: list[str] = []
        self.model_peak_mib: float | None = None
        self.ns = "shop"
        self.kube: Kube
        self.shoppers: Shoppers
        self.podnet: PodNet
        self.golden: Snapshot
        self.operator: subprocess.Popen | None = None
        # Under logs/: Cluster.down(purge=True) deletes everything else in the data dir.
        self.operator_log = data / "logs" / "operator.log"
        self.resets = 0
        self.stock_checked = time.time()

    # -- set-up ----------------------------------------------------------------------------------

    def up(self) -> None:
        self.cluster.up()
        self.cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.cluster.kubectl("create", "namespace", self.ns)
        helm_install(self.cluster, "observability", "observability", self.ns, "cadvisor.enabled=false",
                     "jaeger.enabled=false")
        self.install_shop()
        if self.policy.model:
            self.install_model()
        self.podnet = PodNet(self.cluster.node_netns)
        self.kube = Kube(self.cluster, self.ns, self.podnet)
        s = self.settings
        self.shoppers = Shoppers(f"http://127.0.0.1:{self.cluster.host_port(30080)}", s.read_rps, s.order_rps,
                                 s.request_timeout_seconds)
        self.shoppers.start()
        self.wait_healthy(300)
        self.golden = self.kube.read()

    def install_shop(self) -> None:
        helm_install(self.cluster, "shop", "shop", self.ns, "faultHooks=true")

    def install_model(self) -> None:
        """charts/llm with the provisioned model mounted read-only (as the demo installs it), its Service
        a NodePort published on 127.0.0.1; then wait until the server answers `/v1/models`."""
        gguf = model_file(self.policy.model or pol.DEFAULT_MODEL)
        self.model_path = str(gguf)
        log(f"model: installing charts/llm with {gguf}")
        self.cluster.helm("upgrade", "--install", pol.LLM_RELEASE, str(ROOT / "charts" / "llm"),
                          "-n", pol.LLM_NAMESPACE, "--create-namespace", "--wait", "--timeout=10m",
                          "--set", f"model.hostPath={gguf.parent}", "--set", "service.type=NodePort",
                          "--set", f"service.nodePort={pol.LLM_NODE_PORT}", timeout=630)
        self.model_url = f"http://127.0.0.1:{self.cluster.host_port(pol.LLM_NODE_PORT)}/v1"
        self.model_served = wait_models(self.model_url, 300)
        log(f"model: {self.model_url} serves {self.model_served}")

    def model_server(self) -> dict:
        """The model server's memory now (pol.RSS_HOW) and its restarts; {} without a model."""
        if not self.policy.model:
            return {}
        from localkube.node import cgroups
        out = self.cluster.kubectl("get", "pods", "-n", pol.LLM_NAMESPACE, "-l",
                                   f"app.kubernetes.io/instance={pol.LLM_RELEASE}", "-o", "json", check=False)
        try:
            pods = json.loads(out.stdout)["items"] if out.returncode == 0 else []
        except ValueError:
            pods = []
        statuses, restarts = [], 0
        for pod in pods:
            for c in (pod.get("status") or {}).get("containerStatuses") or []:
                restarts += int(c.get("restartCount") or 0)
                for pid in cgroups.pids_in(cgroups.group(self.cluster.name, pod["metadata"]["uid"], c["name"])):
                    try:
                        statuses.append(Path(f"/proc/{pid}/status").read_text())
                    except OSError:
                        continue
        peak = pol.server_peak_mib(statuses)
        if peak is not None:
            self.model_peak_mib = max(peak, self.model_peak_mib or 0.0)
        return {"peakRssMiB": peak, "restarts": restarts, "pods": len(pods)}

    def reset_shop(self) -> None:
        """A fresh shop (fresh stock), same namespace, Prometheus kept."""
        log("stock low: reinstalling the shop")
        self.resets += 1
        self.shoppers.orders_on.clear()
        self.cluster.helm("uninstall", "shop", "-n", self.ns, "--wait", check=False)
        self.cluster.kubectl("delete", "configmap", "-n", self.ns, "-l", "app.kubernetes.io/managed-by=sre-operator",
                             check=False)
        for cm in self.kube.kubectl("get", "configmaps", "-o", "name").split():
            if cm.startswith("configmap/sre-operator"):
                self.kube.kubectl("delete", cm, check=False)
        # `-l` alone: kubectl refuses `--all` with a selector ("setting 'all' parameter but found a
        # non empty selector") and, unchecked, the shop would be reinstalled over terminating pods.
        self.cluster.kubectl("wait", "--for=delete", "pods", "-n", self.ns, "-l",
                             "app.kubernetes.io/instance=shop", "--timeout=120s", check=False, timeout=130)
        self.install_shop()
        self.shoppers.orders_on.set()
        self.wait_healthy(300)
        self.golden = self.kube.read()

    def wait_healthy(self, timeout: float, seconds: float | None = None) -> bool:
        """The benchmark's SLO over the last `seconds` (a full window by default)."""
        w = seconds or self.settings.slo.window_seconds
        end = time.time() + timeout
        start = time.time()
        while time.time() < end:
            now = time.time()
            if now - start >= w and slomod.meets(slomod.window(self.shoppers.snapshot(), now - w, now),
                                                 self.settings.slo):
                return True
            time.sleep(2)
        return False

    # -- the operator ----------------------------------------------------------------------------

    def operator_env(self) -> dict[str, str]:
        # Default settings: no SRE_OPERATOR_* from the caller, nor OPENAI_API_KEY (the operator reads it
        # as its LLM key: it would switch the planner from the rules to a model).
        env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_OPERATOR_") and k != "OPENAI_API_KEY"}
        env.update({"KUBECONFIG": str(self.cluster.kubeconfig), "SRE_OPERATOR_WATCH_NAMESPACES": self.ns,
                    "SRE_OPERATOR_PROMETHEUS_URL": f"http://127.0.0.1:{self.cluster.host_port(30090)}"})
        env.update(self.policy_env())
        return env

    def policy_env(self) -> dict[str, str]:
        """The policy's variables (none by default: the operator's defaults)."""
        return self.policy.env(self.model_url)

    def operator_settings(self) -> dict:
        """The settings the operator runs with, as it reads them (a separate process: the benchmark
        does not import the operator)."""
        out = subprocess.run([sys.executable, "-c", ("from sre_operator.settings import Settings; "
                                                       "print(Settings().model_dump_json())")], env=self.operator_env(),
                             capture_output=True, text=True, check=False)
        try:
            got = json.loads(out.stdout)
        except ValueError:
            return {"error": out.stderr.strip()[-500:]}
        return {k: ("***" if "key" in k.lower() and v else v) for k, v in got.items()}

    def start_operator(self) -> None:
        self.operator_log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.operator_log, "a")  # noqa: SIM115 - closed with the process
        self.operator = subprocess.Popen([sys.executable, "-m", "sre_operator.main", "run", f"--namespace={self.ns}"],
                                         env=self.operator_env(), stdout=fh, stderr=subprocess.STDOUT)
        fh.close()

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.terminate()
            try:
                self.operator.wait(30)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(10)
            self.operator = None

    # -- runs ------------------------------------------------------------------------------------

    def ensure_stock(self) -> None:
        """A fresh shop when orders met an empty shelf since the last check, or when the shop does
        not restock and its stock would not last the next run."""
        s = self.settings
        need = s.order_rps * (s.baseline_seconds + s.timeout_seconds + s.slo.window_seconds) * 1.2
        since, self.stock_checked = self.stock_checked, time.time()
        if self.shoppers.stockouts(since) or (
                not self.restocks() and self.shoppers.stock and self.shoppers.stock_left() < need):
            self.reset_shop()

    def restocks(self) -> bool:
        return restocks(self.kube.read().deployment("product"))

    def quiet(self) -> None:
        """Healthy traffic for longer than the operator's Prometheus windows (1 m), operator off."""
        self.wait_healthy(300, seconds=max(75.0, self.settings.slo.window_seconds))

    def run_case(self, case: Case) -> dict:
        s = self.settings
        self.ensure_stock()
        self.quiet()
        ctx = RunContext(self.kube, s)
        self.start_operator()
        result: dict | None = None
        try:
            result = self.measure(case, ctx)
        finally:  # whatever happened: the FaultScenario deleted, the operator stopped, the namespace restored
            try:
                done = self.cleanup(ctx)
            except Exception as exc:  # noqa: BLE001 - a restore that fails costs a reinstall, not the benchmark
                log(f"{case.name}: cleanup failed ({type(exc).__name__}: {exc}); reinstalling the shop")
                self.stop_operator()
                self.reset_shop()
                done = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "reinstalled": True}
            if result is not None:
                result["cleanup"] = done
        assert result is not None  # measure() returned (else its exception is on its way up)
        return result

    def measure(self, case: Case, ctx: RunContext) -> dict:
        s = self.settings
        baseline_start = time.time()
        time.sleep(s.baseline_seconds)
        base = self.kube.read(case.probe)
        drift = [f"{k[0]}/{k[1]}" for k in sorted(set(base.objects) | set(self.golden.objects))
                 if (base.objects.get(k) is None) != (self.golden.objects.get(k) is None) or (
                     base.objects.get(k) and state(base.objects[k]) != state(self.golden.objects[k]))]
        error = None
        readings: list[tuple[float, bool]] = []
        last_reason = ""
        fault_at = time.time()
        try:
            case.inject(ctx)
        except Exception as exc:  # noqa: BLE001 - an injection that fails is reported, not fatal
            error = f"{type(exc).__name__}: {exc}"
        fault_at = time.time()
        after_inject = self.kube.read()
        memory: dict = {}
        deadline = fault_at + s.timeout_seconds + s.slo.window_seconds
        while error is None and time.time() < deadline:
            try:
                if case.keep is not None:
                    case.keep(ctx, memory)
                snap = self.kube.read(case.probe)
            except Exception as exc:  # noqa: BLE001 - one failed reading (API or probe timeout) is skipped
                log(f"{case.name}: reading failed: {type(exc).__name__}: {exc}")
                time.sleep(s.poll_seconds)
                continue
            ok, why = case.check(snap, base)
            readings.append((snap.at, ok))
            last_reason = why
            since = [x for x in self.shoppers.snapshot() if x.at >= fault_at]
            if slomod.first_healed(since, readings, fault_at, s.slo, until=time.time()) is not None:
                break
            time.sleep(s.poll_seconds)
        end_at = time.time()
        incidents = self.kube.incidents()
        final = self.kube.read()
        changes = coll.merge_actions(coll.object_changes(after_inject, final, since=fault_at),
                                     coll.incident_actions(incidents))
        facts = oracle.RunFacts(case=case.name, fault_at=fault_at, end_at=end_at, baseline_start=baseline_start,
                                samples=self.shoppers.snapshot(), readings=readings, incidents=incidents,
                                changes=changes, touchable=case.touchable, services=case.services, slo=s.slo,
                                last_reason=last_reason)
        result = oracle.judge(facts)
        if error:
            result.update(verdict=oracle.INVALID, reason=f"injection failed: {error}")
        result["model"] = pol.run_figures(incidents, fault_at, case.faulty, case.services)
        if self.policy.model:
            result["modelServer"] = self.model_server()
        result.update(source=case.source, baselineDrift=drift, operatorPeakRssMiB=self.operator_rss(),
                      incidents=[oracle.incident_summary(i, fault_at) for i in incidents])
        return result

    def operator_rss(self) -> float:
        if self.operator is None:
            return 0.0
        try:
            with open(f"/proc/{self.operator.pid}/status") as fh:
                return round(next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")) / 1024, 1)
        except (OSError, StopIteration):
            return 0.0

    def cleanup(self, ctx: RunContext) -> dict:
        if ctx.scenario:  # the operator reverts its own injection from its snapshot while it runs
            self.kube.kubectl("delete", "faultscenario", ctx.scenario, "--timeout=90s", check=False, timeout=100)
            self.kube.kubectl("patch", f"faultscenario/{ctx.scenario}", "--type=merge", "-p",
                              '{"metadata":{"finalizers":null}}', check=False)
        self.stop_operator()
        self.kube.delete_incidents()
        self.kube.delete_action_ledger()
        done = self.kube.restore(self.golden)
        # Runtime faults live in processes: replace any pod still carrying one.
        snap = self.kube.read(WORKLOADS)
        for name, probe in snap.probes.items():
            fault = probe.get("fault") or {}
            if any(fault.get(k) for k in ("crashed", "latency_ms", "cpu_ms", "leak_kb")):
                self.kube.kubectl("delete", "pod", name, "--wait=false", check=False)
                done.append(f"replaced pod {name} (runtime fault)")
        stuck = self.kube.settle([*WORKLOADS, "loadgen"])
        return {"restored": done, "stuck": stuck}

    def control(self, minutes: float) -> dict:
        self.ensure_stock()
        self.quiet()
        before = self.kube.read()
        self.start_operator()
        try:
            start = time.time()
            time.sleep(minutes * 60)
            end = time.time()
            incidents = self.kube.incidents()
            after = self.kube.read()
            changes = coll.merge_actions(coll.object_changes(before, after, since=start),
                                         coll.incident_actions(incidents))
            out = oracle.judge_control(self.shoppers.snapshot(), start, end, incidents, changes, self.settings.slo)
            out["model"] = pol.run_figures(incidents, start)
            if self.policy.model:
                out["modelServer"] = self.model_server()
            return out
        finally:
            self.cleanup(RunContext(self.kube, self.settings))

    def down(self) -> list[str]:
        """Stop everything the benchmark started; each step runs even when one before it failed, and
        the cluster always goes (its processes, namespaces, cgroups). Returns what is left behind."""
        steps = [self.stop_operator, *(getattr(obj, "close", None) for obj in
                                       (getattr(self, "shoppers", None), getattr(self, "podnet", None)))]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                log(f"teardown: {exc!r}")
        if self.operator is not None and self.operator.poll() is None:
            self.operator.kill()
        self.cluster.down(quiet=True, purge=True)
        try:
            return leftovers(self.cluster)
        except OSError as exc:  # a tool missing (nft, pgrep): nothing checked
            return [f"not checked: {exc}"]


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def model_file(model: str) -> Path:
    """The provisioned GGUF of `--model`; MissingBinary (saying how to get it) when it or llama-server
    is not provisioned: a clear error before a cluster starts, not a pod that never does."""
    from localkube.binaries import MODEL_0_5B, MODEL_1_5B, find_binary, find_model
    find_binary("llama-server")
    return find_model({"1.5b": MODEL_1_5B, "0.5b": MODEL_0_5B}[model])


def wait_models(base_url: str, timeout: float) -> list[str]:
    """Until the server answers `GET /models` with its models (their ids), or TimeoutError."""
    end, last = time.monotonic() + timeout, ""
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=10) as resp:  # noqa: S310 - our URL
                return [str(m.get("id")) for m in json.loads(resp.read()).get("data") or []]
        except (OSError, ValueError, urllib.error.URLError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(2)
    raise TimeoutError(f"the model server at {base_url} did not answer /models in {timeout:g} s ({last})")


def run(cases: Sequence[Case], runs: int, settings: Settings, control_minutes: float,
        policy: Policy | None = None, checkpoint: Path | None = None) -> dict:
    """The whole benchmark; `checkpoint`: a file rewritten after the control and after every run with
    what is known so far (a long run stopped midway keeps its results)."""
    netns.require_root("the scenario benchmark")
    # `kill` (SIGTERM) unwinds like Ctrl-C, so the finally below tears the cluster down.
    signal.signal(signal.SIGTERM, _terminated)
    data = Path(tempfile.mkdtemp(prefix="localkube-bench-"))
    policy = policy or Policy()
    bench = Bench(settings, data, policy)
    results: list[dict] = []
    control = None
    started = time.time()
    op_settings: dict = {}
    op_env: dict[str, str] = {}
    loaded: dict = {}
    try:
        log(f"cluster {bench.cluster.name} in {data}; policy {policy.label}")
        bench.up()
        op_env = pol.masked(bench.policy_env())
        op_settings = bench.operator_settings()
        loaded = bench.model_server()
        if control_minutes > 0:
            log(f"control: {control_minutes:g} min without a fault")
            control = bench.control(control_minutes)
            log(f"control: {control['falsePositiveIncidents']} Incident(s), "
                f"{control['falsePositiveChanges']} change(s)")
            save(checkpoint, control, results)
        for n in range(runs):
            for case in cases:
                r = bench.run_case(case)
                r["run"] = n + 1
                results.append(r)
                save(checkpoint, control, results)
                log(f"{case.name} run {n + 1}: {r['verdict']} ({r['reason']}); TTD {r['timeToDetectSeconds']}s "
                    f"(operator {r['operatorTimeToDetectSeconds']}s), TTM {r['timeToMitigateSeconds']}s, "
                    f"diagnosis {r['diagnosis']} {r['incidentServices']}, collateral {len(r['collateral'])}")
                m = r["model"]
                if policy.model:
                    log(f"{case.name} run {n + 1}: model {m['calls']} call(s), {m['tokens']} tokens, "
                        f"seconds {m['callSeconds']}; diagnosed by {m['diagnosedBy']}, planned by "
                        f"{'+'.join(m['planners']) or '-'}; server peak {r['modelServer'].get('peakRssMiB')} MiB")
                    for why in (w for inc in m["perIncident"] for w in inc["fallbackReasons"]):
                        log(f"{case.name} run {n + 1}: fell back to the rules: {why}")
    finally:
        left = bench.down()
        if left:
            log(f"left behind: {left}")
        if os.environ.get("BENCH_KEEP_DATA") is None:
            subprocess.run(["rm", "-rf", str(data)], check=False)
    return {"settings": settings.as_dict(), "operatorSettings": op_settings,
            "operatorEnvironment": {**dict.fromkeys(OPERATOR_ENV, "(set by the benchmark)"), **op_env},
            "policy": {**policy.as_dict(), "modelFile": bench.model_path, "served": bench.model_served},
            "modelServer": {"peakRssMiB": bench.model_peak_mib, "afterLoad": loaded, "how": pol.RSS_HOW}
            if policy.model else None,
            "startedAt": started, "minutes": round((time.time() - started) / 60, 1), "shopResets": bench.resets,
            "control": control, "runs": results}
