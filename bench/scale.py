"""`make bench-scale` (also part of `make bench`): the operator watching many shops at once.

On a fresh local cluster, kwok's fake nodes run the shop (every Deployment, Service and ConfigMap
of the chart, pods Running and Ready, no processes) in 10, 50, then 100 namespaces (and more:
`--sizes 100,1000`). For each size a fresh operator process watches all of them (dry-run mode: it
detects, triages and plans, and acts on nothing), and `product` is scaled to 0 at once in a tenth of
the namespaces (at least 10; `--faults`): that many Incidents open at once. Two tables:

- the detector: its cycle over every namespace as the operator logs it (median and slowest before
  the faults; slowest while the Incidents are opened and planned: "busy"), and the operator's
  memory (RSS before the faults, after the plans, peak) and threads;
- the Incidents: detection latency (fault → Incident created) and time to a plan (Incident
  created → its plan written, phase DryRun: triage and planning done), median and slowest, from
  the Incidents' own record (creation time, timeline; whole seconds).

No Prometheus here (kwok pods export nothing): the operator reads Kubernetes signals only, and its
Prometheus URL points at a closed port, as when Prometheus is down. Prints both tables and writes JSON.
Usage: python bench/scale.py [--sizes 10,50,100] [--faults N] [--out bench/scale.json]"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from localkube import kwok, netns
from localkube.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MiB."""
    try:
        fields = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in ln)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        return 0.0, 0.0


def shop_manifest(cluster: Cluster, path: Path) -> None:
    out = cluster.helm(
        "template",
        "shop",
        str(ROOT / "charts" / "shop"),
        "--set",
        "persistence.enabled=false",
        "--set",
        "gateway.service.type=ClusterIP",
        "--set-json",
        f"nodeSelector={json.dumps(kwok.ON_KWOK['nodeSelector'])}",
        "--set-json",
        f"tolerations={json.dumps(kwok.ON_KWOK['tolerations'])}",
    )
    path.write_text(out.stdout)


def all_incidents(cluster: Cluster) -> list[dict]:
    return json.loads(cluster.kubectl("get", "incidents", "-A", "-o", "json", timeout=120).stdout)["items"]


def ready_pods(cluster: Cluster, prefix: str) -> int:
    out = cluster.kubectl("get", "pods", "-A", "--field-selector=status.phase=Running", "--no-headers",
                          "-o", "custom-columns=NS:.metadata.namespace", timeout=300).stdout
    return sum(1 for ns in out.split() if ns.startswith(prefix))


def create_shops(cluster: Cluster, manifest: Path, names: list[str], batch: int = 50) -> None:
    """The shop in each namespace of `names`, `batch` namespaces a `kubectl create` (one call per
    namespace takes a quarter of an hour at 1,000)."""
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    for i in range(0, len(names), batch):
        out = []
        for ns in names[i:i + batch]:
            out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            out += [{**d, "metadata": {**d["metadata"], "namespace": ns}} for d in docs]
        cluster.kubectl("create", "-f", "-", input=yaml.safe_dump_all(out), timeout=900)


def cycle_times(log: Path) -> list[float]:
    return [float(m) for m in re.findall(r"detector cycle over \d+ namespaces took ([0-9.]+)s", log.read_text())]


def stamp(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def plan_time(incident: dict) -> dt.datetime | None:
    """When the Incident's plan was written (it reached DryRun), or it ended without one."""
    for entry in (incident.get("status") or {}).get("timeline") or []:
        if entry.get("phase") in ("DryRun", "Escalated", "Failed", "Resolved"):
            return stamp(entry["at"])
    return None


def scale(cluster: Cluster, namespaces: list[str], replicas: int, check: bool = True) -> None:
    """`product` scaled to `replicas` in every namespace of `namespaces` with one kubectl call (the
    faults at once: one call a namespace takes a minute for a hundred)."""
    refs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "product", "namespace": ns}}
            for ns in namespaces]
    cluster.kubectl("scale", f"--replicas={replicas}", "-f", "-", input=yaml.safe_dump_all(refs), check=check,
                    timeout=600)


def one_size(cluster: Cluster, data: Path, namespaces: list[str], faults: int, logs: Path | None = None) -> dict:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "SRE_OPERATOR_WATCH_NAMESPACES": ",".join(namespaces),
           "SRE_OPERATOR_PROMETHEUS_URL": "http://127.0.0.1:9", "SRE_OPERATOR_MODE": "dry-run",
           "SRE_OPERATOR_DETECT_INTERVAL_SECONDS": "5", "SRE_OPERATOR_BREACH_CYCLES": "2"}
    log_path = data / f"operator-{len(namespaces)}.log"
    log = log_path.open("w")
    targets: list[str] = []
    op = subprocess.Popen([sys.executable, "-m", "sre_operator.main", "run", "--all-namespaces"], env=env,
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        # Warm up: a few detector cycles over every namespace before any fault.
        end = time.monotonic() + 300
        while time.monotonic() < end and len(cycle_times(log_path)) < 3:
            time.sleep(1)
        idle_rss, _ = rss_mib(op.pid)
        idle_cycles = cycle_times(log_path)
        faults = faults or max(10, len(namespaces) // 10)
        step = max(1, len(namespaces) // faults)
        targets = namespaces[::step][:faults]
        injected = dt.datetime.now(dt.UTC).replace(microsecond=0)  # whole seconds, as the Incidents' stamps
        scale(cluster, targets, 0)
        seen: dict[str, dict] = {}
        end = time.monotonic() + 180
        while time.monotonic() < end and len([i for i in seen.values() if plan_time(i)]) < len(targets):
            seen.update((i["metadata"]["namespace"], i) for i in all_incidents(cluster)
                        if i["metadata"]["namespace"] in targets)
            time.sleep(1)
        rss, peak = rss_mib(op.pid)
        # From the Incidents' own record: created (metadata), plan written (the timeline's entry).
        ttd = [(stamp(i["metadata"]["creationTimestamp"]) - injected).total_seconds() for i in seen.values()]
        rec = [(plan - stamp(i["metadata"]["creationTimestamp"])).total_seconds()
               for i in seen.values() if (plan := plan_time(i))]
        cycles = cycle_times(log_path)
        threads = len(list(Path(f"/proc/{op.pid}/task").iterdir())) if Path(f"/proc/{op.pid}").exists() else 0
        return {"namespaces": len(namespaces), "deployments": 5 * len(namespaces), "faults": len(targets),
                "detected": len(seen), "planned": len(rec),
                "ttdMedianSeconds": round(statistics.median(ttd), 1) if ttd else None,
                "ttdMaxSeconds": round(max(ttd), 1) if ttd else None,
                "reconcileMedianSeconds": round(statistics.median(rec), 1) if rec else None,
                "reconcileMaxSeconds": round(max(rec), 1) if rec else None,
                "cycleMedianSeconds": round(statistics.median(idle_cycles), 2) if idle_cycles else None,
                "cycleMaxSeconds": round(max(idle_cycles), 2) if idle_cycles else None,
                # While the Incidents are opened and planned (logged: the slow ones, and every 12th).
                "stormCycleMaxSeconds": round(max(cycles[len(idle_cycles):]), 2) if cycles[len(idle_cycles):] else None,
                "cycles": len(cycles),
                "threads": threads,
                "idleRssMiB": round(idle_rss, 1), "rssMiB": round(rss, 1), "peakRssMiB": round(peak, 1)}
    finally:
        op.terminate()
        try:
            op.wait(30)
        except subprocess.TimeoutExpired:
            op.kill()
        log.close()
        if logs is not None:
            shutil.copy(log_path, logs / log_path.name)
        if targets:
            scale(cluster, targets, 1, check=False)
        cluster.kubectl("delete", "incidents", "--all", "-A", "--wait=false", check=False, timeout=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scale.py")
    p.add_argument("--sizes", default=os.environ.get("BENCH_SCALE_SIZES", "10,50,100"))
    p.add_argument("--faults", type=int, default=0, help="Incidents at once (default: a tenth of the namespaces, "
                   "at least 10)")
    p.add_argument("--out", default=str(ROOT / "bench" / "scale.json"))
    p.add_argument("--logs", type=Path, help="keep the operator's log of each size in this directory")
    args = p.parse_args(argv)
    try:
        netns.require_root("the scale benchmark")
    except netns.NotRoot as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if not kwok.find_kwok():
        print("bench: kwok is not built (make cluster-bin)", file=sys.stderr)
        return 1
    sizes = [int(x) for x in args.sizes.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still take the cluster down
    data = Path(tempfile.mkdtemp(prefix="localkube-scale-"))
    cluster = Cluster("s" + uuid.uuid4().hex[:5], data)
    rows: list[dict] = []
    try:
        cluster.up()
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        cluster.start_kwok()
        kwok.add_nodes(cluster, max(2, max(sizes) * 4 // 200 + 1), prefix="kwok-scale", pods=250)
        manifest = data / "shop.yaml"
        shop_manifest(cluster, manifest)
        namespaces: list[str] = []
        for size in sizes:
            t0 = time.monotonic()
            new = [f"scale-{i:04d}" for i in range(len(namespaces), size)]
            create_shops(cluster, manifest, new)
            namespaces += new
            end = time.monotonic() + 1200
            while time.monotonic() < end and ready_pods(cluster, "scale-") < 4 * size:
                time.sleep(2)
            print(f"bench: {size} shops on kwok ({ready_pods(cluster, 'scale-')} pods Running) "
                  f"in {time.monotonic() - t0:.0f}s", flush=True)
            row = one_size(cluster, data, list(namespaces), args.faults, args.logs)
            rows.append(row)
            print(f"bench: {json.dumps(row)}", flush=True)
    finally:
        cluster.down(quiet=True, purge=True)
    report(rows, Path(args.out))
    return 0


def table(head: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    print("  ".join(f"{h:>14}" for h in head))
    for r in rows:
        print("  ".join(f"{v!s:>14}" for v in r))


def report(rows: list[dict], out: Path) -> None:
    print("detector")
    table(("namespaces", "deployments", "cycle p50 s", "cycle max s", "busy max s", "RSS idle MiB", "RSS MiB",
           "peak MiB", "threads"),
          [(r["namespaces"], r["deployments"], r["cycleMedianSeconds"], r["cycleMaxSeconds"],
            r.get("stormCycleMaxSeconds"), r["idleRssMiB"], r["rssMiB"], r["peakRssMiB"], r["threads"]) for r in rows])
    print("incidents (dry-run: detected, triaged, planned)")
    table(("namespaces", "incidents", "detected", "planned", "TTD p50 s", "TTD max s", "plan p50 s", "plan max s"),
          [(r["namespaces"], r["faults"], r["detected"], r["planned"], r["ttdMedianSeconds"], r["ttdMaxSeconds"],
            r["reconcileMedianSeconds"], r["reconcileMaxSeconds"]) for r in rows])
    out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"bench: wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
