"""Finished Incidents are deleted `finished_ttl_seconds` after they finished (issue 20): Incidents run
to their end through the in-memory cluster by the real runner, then expired by `incident.retention`
and by the kopf timer that calls it. Missing or odd data never deletes anything."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import kopf
import pytest

from sre_operator.domain.clock import parse
from sre_operator.handlers import incidents as handlers
from sre_operator.incident import retention
from sre_operator.settings import Settings
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_pipeline import (
    FAILING,
    HEALTHY,
    NS,
    Figures,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
)

TTL = 3600.0


def body(cluster: MemoryCluster, name: str = "inc") -> dict[str, Any]:
    inc = cluster.get("Incident", NS, name)
    assert inc is not None
    return inc


def test_a_resolved_and_an_escalated_incident_are_deleted_after_the_ttl_not_before(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    assert run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings())["phase"] == "Resolved"
    incident(cluster, name="bad", service="payment", symptom="error-rate", source="prometheus")
    st = run(cluster, ports(cluster, Figures(payment=dict(FAILING))), settings(max_attempts=1), name="bad")
    assert st["phase"] == "Escalated" and "resolvedAt" not in st
    for name in ("inc", "bad"):
        end = retention.finished_at(body(cluster, name)["status"])
        assert end is not None
        assert not retention.expire(cluster, body(cluster, name), end + dt.timedelta(seconds=TTL - 1), TTL, False)
        assert not retention.expire(cluster, body(cluster, name), end + dt.timedelta(days=365), 0, False)  # for ever
        assert cluster.get("Incident", NS, name) is not None
        assert retention.expire(cluster, body(cluster, name), end + dt.timedelta(seconds=TTL), TTL, False)
        assert cluster.get("Incident", NS, name) is None
    assert retention.finished_at({"phase": "Resolved", "resolvedAt": "2026-01-01T00:00:00Z"}) == \
        parse("2026-01-01T00:00:00Z")


@pytest.mark.parametrize("status", [
    {"phase": "Mitigating", "timeline": [{"at": "2020-01-01T00:00:00Z", "phase": "Mitigating"}]},  # open
    {"phase": "Escalated"},  # no record of when it ended
    {"phase": "Escalated", "timeline": [{"at": "yesterday", "phase": "Escalated"}]},
    {"phase": "Escalated", "timeline": "long ago"},
    {"phase": "Resolved", "resolvedAt": 5, "timeline": [None, 3]},
    "Resolved",
])
def test_an_incident_whose_end_cannot_be_read_is_kept(status: Any) -> None:
    inc = {"metadata": {"name": "x", "namespace": NS}, "status": status}
    assert not retention.expired(inc, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), 1, telling=False)


def test_a_notice_not_yet_told_keeps_the_incident() -> None:
    inc = {"metadata": {"name": "x", "namespace": NS},
           "status": {"phase": "Resolved", "resolvedAt": "2020-01-01T00:00:00Z"}}
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert not retention.expired(inc, later, 1, telling=True)
    assert retention.expired(inc, later, 1, telling=False)  # no sink: nothing to wait for
    told = {**inc, "status": {**inc["status"], "notified": {"Resolved": {"at": "2020-01-01T00:00:01Z"}}}}
    assert retention.expired(told, later, 1, telling=True)


def test_the_timer_deletes_in_the_namespaces_the_operator_acts_in_only(cluster: MemoryCluster,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "Kube", lambda: cluster)
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings())  # resolved in the fake's past
    log = logging.getLogger("test")
    for watched, kept in (("elsewhere", True), (NS, False)):
        memo = kopf.Memo()
        memo.settings = Settings(watch_namespaces=watched, finished_ttl_seconds=TTL)
        handlers.expire_finished(body=body(cluster), namespace=NS, memo=memo, logger=log)  # type: ignore[arg-type]
        assert (cluster.get("Incident", NS, "inc") is not None) == kept
