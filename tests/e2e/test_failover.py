"""Two operator replicas (real processes, leader election on a Lease) against the shop on the local
cluster: the leader is SIGKILLed in the middle of an Incident; the standby takes the Lease once it
expires and finishes the Incident from its record, without repeating the action."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from localkube.cluster import Cluster
from localkube.testing import Traffic, wait_for
from shop.procs import free_port


def holder(cluster: Cluster, ns: str) -> str:
    out = cluster.kubectl("get", "lease", "sre-operator-leader", "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout)["spec"].get("holderIdentity", "") if out.returncode == 0 else ""


def incidents(cluster: Cluster, ns: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", "incidents", "-n", ns, "-o", "json").stdout)["items"]


def test_killing_the_leader_mid_incident_lets_the_standby_finish_it(cluster: Cluster, shop: str,
                                                                    tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "POD_NAMESPACE": shop,
           "SRE_OPERATOR_WATCH_NAMESPACES": shop, "SRE_OPERATOR_LEASE_SECONDS": "6",
           "SRE_OPERATOR_PROMETHEUS_URL": f"http://127.0.0.1:{cluster.host_port(30090)}",
           "SRE_OPERATOR_DETECT_INTERVAL_SECONDS": "3", "SRE_OPERATOR_SETTLE_SECONDS": "20",
           "SRE_OPERATOR_BREACH_CYCLES": "2",
           # One key for both replicas (the chart's record-key Secret): the standby trusts the leader's records.
           "SRE_OPERATOR_RECORD_KEY": secrets.token_hex(24)}
    ports = [free_port(), free_port()]
    replicas = [subprocess.Popen(
        [sys.executable, "-m", "sre_operator.main", "run", f"--namespace={shop}", "--leader-election",
         f"--liveness=http://127.0.0.1:{port}/healthz"],
        env={**env, "SRE_OPERATOR_METRICS_PORT": str(free_port())}, start_new_session=True,  # one machine, two replicas
        stdout=(tmp_path / f"replica{i}.log").open("w"), stderr=subprocess.STDOUT) for i, port in enumerate(ports)]
    traffic = Traffic(f"http://127.0.0.1:{cluster.host_port(30080)}")
    traffic.thread.start()
    try:
        wait_for(lambda: holder(cluster, shop), 60, "a leader")
        pid = int(holder(cluster, shop).rsplit("/", 1)[1])
        [leader] = [p for p in replicas if p.pid == pid]
        [standby] = [p for p in replicas if p.pid != pid]
        standby_port = ports[replicas.index(standby)]
        # The standby is alive (its probe answers) but does nothing.
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{standby_port}/healthz", timeout=2).status_code == 200, 30,
                 "the standby's liveness endpoint")
        wait_for(lambda: cluster.kubectl("get", "configmap", "sre-operator-known-good", "-n", shop,
                                         check=False).returncode == 0 and traffic.ok_since(time.monotonic() - 5),
                 120, "a healthy reading")
        cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\nmetadata: {{name: zero, "
                      f"namespace: {shop}}}\nspec: {{type: scale-to-zero, target: {{name: product}}, duration: 10m}}\n")

        def acted() -> dict | None:
            for i in incidents(cluster, shop):
                if (i.get("status") or {}).get("actions"):
                    return i
            return None
        inc = wait_for(acted, 150, "the leader's first action")
        os.killpg(leader.pid, signal.SIGKILL)  # no release, no goodbye: the Lease must expire
        killed = time.monotonic()
        leader.wait(10)
        name = inc["metadata"]["name"]
        wait_for(lambda: holder(cluster, shop).endswith(f"/{standby.pid}"), 30, "the standby to take the lease")
        took_over = time.monotonic() - killed

        def current() -> dict:
            return next(i for i in incidents(cluster, shop) if i["metadata"]["name"] == name)
        try:
            wait_for(lambda: current().get("status", {}).get("phase") in ("Resolved", "Escalated"), 240,
                     "the standby to finish the incident")
        except AssertionError as exc:
            raise AssertionError(json.dumps(current().get("status"), indent=1)[:5000]) from exc
        st = current()["status"]
        assert st["phase"] == "Resolved", json.dumps(st, indent=1)[:5000]
        assert [(a["attempt"], a["index"], a["type"], a["outcome"]) for a in st["actions"]] == [
            (1, 0, "scale", "applied")]
        assert len(incidents(cluster, shop)) == 1
        lease = json.loads(cluster.kubectl("get", "lease", "sre-operator-leader", "-n", shop, "-o", "json").stdout)
        assert lease["spec"]["leaseTransitions"] >= 1
        print(f"failover: standby took the lease {took_over:.1f}s after the kill")
        assert "Traceback" not in (tmp_path / f"replica{replicas.index(standby)}.log").read_text()
    finally:
        traffic.stop.set()
        traffic.thread.join()
        for p in replicas:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        cluster.kubectl("delete", "faultscenario", "zero", "-n", shop, "--timeout=60s", check=False)
