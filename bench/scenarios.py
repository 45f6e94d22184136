"""`make bench-scenarios` (also the second half of `make bench`): each seed fault, several times,
on a fresh local cluster with the shop under steady traffic, real Prometheus and the operator
(`sre-operator run`, a separate process). Figures, not assertions:

- time to detect: FaultScenario applied → Incident created;
- time to mitigate: FaultScenario applied → Incident Resolved (as the operator measures it too);
- success rate (Resolved / runs), attempts and actions taken, LLM calls and tokens (0 with the
  rules planner; set SRE_OPERATOR_LLM_API_KEY to measure a model), the operator's peak memory.

Prints a table and writes every run as JSON (`--out`, default bench/scenarios.json).
Usage: python bench/scenarios.py [--runs N] [--scenario NAME ...] [--out FILE]
(default: the three seed scenarios; `--scenario bad-rollout` etc. for the others)"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from localkube import netns
from localkube.cluster import Cluster, PortMapping
from localkube.testing import Traffic, shop_namespace
from sre_operator.domain.vocabulary import FaultType

ROOT = Path(__file__).resolve().parents[1]


def _scenario(ftype: FaultType) -> str:
    """The FaultScenario spec a run applies: the type's manifest in scenarios/, lasting 10 minutes
    (longer than any run), as a YAML flow mapping."""
    spec = yaml.safe_load((ROOT / "scenarios" / f"{ftype}.yaml").read_text())["spec"]
    return json.dumps({**spec, "duration": "10m"})


SCENARIOS = {str(t): _scenario(t) for t in FaultType}
SEED = tuple(str(t) for t in (FaultType.PAYMENT_CRASH, FaultType.PRODUCT_OVERLOAD,
                             FaultType.BAD_GATEWAY_CONFIG))  # the default set
TERMINAL = {"Resolved", "Escalated", "Failed", "DryRun"}


def peak_rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def incidents(cluster: Cluster, ns: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", "incidents", "-n", ns, "-o", "json").stdout)["items"]


def wait(check, timeout: float, every: float = 1.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    return None


def one_run(cluster: Cluster, ns: str, scenario: str, shoppers: Traffic, operator_pid: int) -> dict:
    seen = {i["metadata"]["name"] for i in incidents(cluster, ns)}
    name = f"bench-{uuid.uuid4().hex[:5]}"
    cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\n"
                  f"metadata: {{name: {name}, namespace: {ns}}}\nspec: {SCENARIOS[scenario]}\n")
    t0 = time.monotonic()
    result: dict = {"scenario": scenario, "phase": "NotDetected"}
    found = wait(lambda: [i for i in incidents(cluster, ns) if i["metadata"]["name"] not in seen], 180)
    if found:
        result["timeToDetectSeconds"] = round(time.monotonic() - t0, 1)
        inc_name = found[0]["metadata"]["name"]

        def done() -> dict | None:
            inc = next(i for i in incidents(cluster, ns) if i["metadata"]["name"] == inc_name)
            return inc if (inc.get("status") or {}).get("phase") in TERMINAL else None
        inc = wait(done, 420, every=2)
        st = (inc or next(i for i in incidents(cluster, ns) if i["metadata"]["name"] == inc_name)).get("status", {})
        result.update(phase=st.get("phase"), service=found[0]["spec"]["service"],
                      symptom=found[0]["spec"]["symptom"], attempts=st.get("attempts", 0),
                      actions=[f"{a['type']} {a['target']['kind'].lower()}/{a['target']['name']} ({a['outcome']})"
                               for a in st.get("actions") or []],
                      planner=(st.get("diagnosis") or {}).get("planner"),
                      llm=st.get("llm") or {"calls": 0, "promptTokens": 0, "completionTokens": 0},
                      incidentsOpened=len(found))
        if st.get("phase") == "Resolved":
            result["timeToMitigateSeconds"] = round(time.monotonic() - t0, 1)
            result["operatorTimeToMitigate"] = st.get("timeToMitigate")
            back = wait(lambda: shoppers.ok_since(time.monotonic() - 3), 90)
            result["shopHealthyAgainSeconds"] = round(time.monotonic() - t0, 1) if back else None
    cluster.kubectl("delete", "faultscenario", name, "-n", ns, "--timeout=90s", check=False)
    for d in ("gateway", "order", "product", "payment"):
        cluster.kubectl("rollout", "status", "-n", ns, f"deployment/{d}", "--timeout=180s", timeout=190, check=False)
    if scenario == "real-overload":  # the scale-out stays after the load is gone: back to one for the next run
        cluster.kubectl("scale", "deployment/product", "-n", ns, "--replicas=1", check=False)
    # Let the shop's 1-minute figures recover before the next run (the operator's cooldown is 60 s here).
    wait(lambda: shoppers.ok_since(time.monotonic() - 10), 120)
    time.sleep(50)
    result["operatorPeakRssMiB"] = round(peak_rss_mib(operator_pid), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scenarios.py")
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "2")))
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    p.add_argument("--out", default=str(ROOT / "bench" / "scenarios.json"))
    args = p.parse_args(argv)
    try:
        netns.require_root("the scenario benchmark")
    except netns.NotRoot as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    names = args.scenario or list(SEED)
    data = Path(tempfile.mkdtemp(prefix="localkube-bench-"))
    cluster = Cluster("b" + uuid.uuid4().hex[:5], data, mappings=[PortMapping(0, 30080), PortMapping(0, 30090)])
    runs: list[dict] = []
    try:
        cluster.up()
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        with shop_namespace(cluster, observability=True) as ns:
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "SRE_OPERATOR_WATCH_NAMESPACES": ns,
                   "SRE_OPERATOR_PROMETHEUS_URL": f"http://127.0.0.1:{cluster.host_port(30090)}",
                   "SRE_OPERATOR_DETECT_INTERVAL_SECONDS": "3", "SRE_OPERATOR_SETTLE_SECONDS": "20",
                   "SRE_OPERATOR_COOLDOWN_SECONDS": "60"}
            log = open(data / "operator.log", "w")  # noqa: SIM115 - open for the operator's lifetime
            op = subprocess.Popen([sys.executable, "-m", "sre_operator.main", "run", f"--namespace={ns}"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
            # Fewer orders than the tests' shoppers: the seed stock must last every run.
            shoppers = Traffic(f"http://127.0.0.1:{cluster.host_port(30080)}", order_every=24)
            shoppers.thread.start()
            try:
                wait(lambda: cluster.kubectl("get", "configmap", "sre-operator-known-good", "-n", ns,
                                             check=False).returncode == 0 and shoppers.ok_since(
                    time.monotonic() - 5), 150)
                for n in range(args.runs):
                    for scenario in names:
                        r = one_run(cluster, ns, scenario, shoppers, op.pid)
                        r["run"] = n + 1
                        runs.append(r)
                        print(f"bench: {scenario} run {n + 1}: {r['phase']}, TTD {r.get('timeToDetectSeconds')}s, "
                              f"TTM {r.get('timeToMitigateSeconds')}s, actions {r.get('actions')}", flush=True)
            finally:
                shoppers.stop.set()
                op.terminate()
                op.wait(30)
                log.close()
    finally:
        cluster.down(quiet=True, purge=True)
    report(runs, names, Path(args.out))
    return 0


def report(runs: list[dict], names: list[str], out: Path) -> None:
    rows = []
    for s in names:
        mine = [r for r in runs if r["scenario"] == s]
        ok = [r for r in mine if r["phase"] == "Resolved"]
        ttd = [r["timeToDetectSeconds"] for r in mine if "timeToDetectSeconds" in r]
        ttm = [r["timeToMitigateSeconds"] for r in ok]
        rows.append({"scenario": s, "runs": len(mine), "resolved": len(ok),
                     "successRate": round(len(ok) / len(mine), 2) if mine else 0,
                     "ttdMedianSeconds": statistics.median(ttd) if ttd else None,
                     "ttmMedianSeconds": statistics.median(ttm) if ttm else None,
                     "ttmMaxSeconds": max(ttm) if ttm else None,
                     "actionsPerRun": round(statistics.mean(len(r.get("actions") or []) for r in mine), 1)
                     if mine else 0,
                     "llmTokens": sum(r.get("llm", {}).get("promptTokens", 0)
                                      + r.get("llm", {}).get("completionTokens", 0) for r in mine),
                     "operatorPeakRssMiB": max((r.get("operatorPeakRssMiB", 0) for r in mine), default=0)})
    head = ("scenario", "runs", "resolved", "TTD p50 s", "TTM p50 s", "TTM max s", "actions/run", "LLM tokens",
            "operator peak MiB")
    print("  ".join(f"{h:>18}" for h in head))
    for r in rows:
        print("  ".join(f"{v!s:>18}" for v in (r["scenario"], r["runs"], r["resolved"], r["ttdMedianSeconds"],
                                                   r["ttmMedianSeconds"], r["ttmMaxSeconds"], r["actionsPerRun"],
                                                   r["llmTokens"], r["operatorPeakRssMiB"])))
    out.write_text(json.dumps({"summary": rows, "runs": runs}, indent=1) + "\n")
    print(f"bench: wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
