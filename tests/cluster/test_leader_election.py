"""Leader election on a real API server: one holder at a time, a standby takes over when the
leader stops renewing (after the lease expires) or releases (at once), and a leader that finds its
Lease taken gives up."""
from __future__ import annotations

import json
import os
import threading
import time

from localkube.cluster import Cluster
from localkube.testing import wait_for
from sre_operator.adapters import kube as kube_mod
from sre_operator.adapters.lease import LeaderElector


def holder(cluster: Cluster, ns: str) -> str:
    out = cluster.kubectl("get", "lease", "sre-operator-leader", "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout)["spec"].get("holderIdentity", "") if out.returncode == 0 else ""


def test_one_leader_at_a_time_and_a_standby_takes_over(cluster: Cluster, namespace: str) -> None:
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    kube_mod.load_config()
    a = LeaderElector(namespace, "sre-operator-leader", "a", lease_seconds=4, renew_seconds=1, retry_seconds=0.5)
    b = LeaderElector(namespace, "sre-operator-leader", "b", lease_seconds=4, renew_seconds=1, retry_seconds=0.5)
    assert a.acquire() and holder(cluster, namespace) == "a"
    assert not b.try_once()  # held and fresh
    stop_a = threading.Event()
    a.keep(on_lost=lambda: None, stop=stop_a)
    time.sleep(5)  # longer than the lease: a's renewals keep it
    assert not b.try_once() and holder(cluster, namespace) == "a"

    stop_a.set()  # a stops renewing (as a killed process would)
    t0 = time.monotonic()
    assert b.acquire()
    waited = time.monotonic() - t0
    assert holder(cluster, namespace) == "b" and 2.0 <= waited <= 8.0, waited
    lease = json.loads(cluster.kubectl("get", "lease", "sre-operator-leader", "-n", namespace, "-o", "json").stdout)
    assert lease["spec"]["leaseTransitions"] == 1

    # a comes back believing it leads: its next renewal finds b's Lease and it gives up.
    lost = threading.Event()
    stop_b = threading.Event()
    b.keep(on_lost=lambda: None, stop=stop_b)
    a.keep(on_lost=lost.set, stop=threading.Event())
    wait_for(lost.is_set, 10, "a to notice it lost the lease")
    assert holder(cluster, namespace) == "b"

    # A clean stop releases: the standby takes over at once, not after the lease.
    stop_b.set()
    b.release()
    t0 = time.monotonic()
    assert a.acquire() and time.monotonic() - t0 < 2.0
