"""The per-hour action limit counts from the operator's own action ledger: deleting the Incidents
that acted (anyone who may delete Incidents can) does not reset it."""
from __future__ import annotations

import datetime as dt
import json

from sre_operator.domain.policy import Caps
from sre_operator.domain.snapshot import ACTION_LEDGER, KNOWN_GOOD
from sre_operator.incident import limits
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import HEALTHY, NS, Figures, deployment_patches, incident, ports, run, settings

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def break_product(cluster: MemoryCluster) -> None:
    cluster.patch("Deployment", NS, "product", "merge", {"spec": {"replicas": 0}})
    cluster.controllers()
    cluster.tick(60)


def test_deleting_finished_incidents_does_not_reset_the_hourly_limit() -> None:
    cluster = shop(MemoryCluster())
    cluster.create("ConfigMap", NS, {"metadata": {"name": KNOWN_GOOD}, "data": {"_replicas.product": "1"}})
    s = settings(max_actions_per_workload_per_hour=2)
    p = ports(cluster, Figures(product=dict(HEALTHY)))
    for n in range(2):
        break_product(cluster)
        incident(cluster, f"inc{n}")
        assert run(cluster, p, s, f"inc{n}")["phase"] == "Resolved"
        cluster.delete("Incident", NS, f"inc{n}")  # the trail of what was done, gone
    assert len(deployment_patches(cluster, "product")) == 4  # the test's two breaks, the operator's two fixes
    break_product(cluster)
    incident(cluster, "inc2")
    st = run(cluster, p, s, "inc2")
    assert st["phase"] == "Escalated" and "2 actions in the last hour" in st["message"], st.get("message")
    assert len(deployment_patches(cluster, "product")) == 5  # no third fix: the test's break only
    ledger = cluster.get("ConfigMap", NS, ACTION_LEDGER)
    assert ledger is not None and len(json.loads(ledger["data"]["Deployment.product"])) == 2


def test_the_ledger_counts_the_last_hour_and_shrugs_off_garbage() -> None:
    me = {"metadata": {"name": "a"}, "status": {}}
    ledger = limits.recorded(None, "Deployment/payment", "u/1/0", NOW - dt.timedelta(minutes=90))
    ledger = limits.recorded(ledger, "Deployment/payment", "u/2/0", NOW - dt.timedelta(minutes=10))
    ledger = limits.recorded(ledger, "Deployment/payment", "u/3/0", NOW)
    assert len(json.loads(ledger["Deployment.payment"])) == 2  # the one of 90 minutes ago dropped
    caps = Caps(max_actions_per_hour=2)
    assert limits.check(me, [], {"Deployment/payment"}, NOW + dt.timedelta(seconds=1), caps, ledger).verdict == \
        "escalate"
    for junk in ("not json", "[1, 2]", '{"x": "not a time"}'):
        assert limits.check(me, [], {"Deployment/payment"}, NOW, caps, {"Deployment.payment": junk}).verdict == "go"
