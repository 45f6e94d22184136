"""Notices to a person (issue 20): the real runner drives Incidents through the in-memory cluster
with a fake `Notifier` port; each transition into AwaitingApproval (per attempt), Escalated or
Resolved is told once, recorded in `status.notified`, told after a restart when the last operator
had not finished, and a notifier that fails never stops the pipeline. The HTTP adapter's message
shapes are checked here; its delivery against a real receiver is in tests/services."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import yaml

from sre_operator.adapters.notify import slack_body, webhook_body
from sre_operator.domain.notify import Notice
from sre_operator.handlers import incidents as handlers
from sre_operator.incident import notices, pipeline
from tests.fakes.cluster import MemoryCluster
from tests.unit.test_crds import CRDS
from tests.unit.test_pipeline import (
    HEALTHY,
    NS,
    Figures,
    approve,
    incident,
    ports,
    run,
    scale_to_zero,
    settings,
    unknown_fields,
)

DASHBOARD = "http://dash.example:8888"


class Told:
    """The Notifier port: keeps each notice; tells the runner it was delivered at once, or never
    (`hold`: the operator stops before the sinks answer)."""

    def __init__(self, hold: bool = False, broken: bool = False) -> None:
        self.notices: list[Notice] = []
        self.hold, self.broken = hold, broken

    def notify(self, notice: Notice, done: Callable[[str], None]) -> None:
        if self.broken:
            raise RuntimeError("notifier down")
        self.notices.append(notice)
        if not self.hold:
            done("delivered")

    @property
    def phases(self) -> list[str]:
        return [n.phase for n in self.notices]


def test_approval_and_resolution_are_told_once_each_with_what_a_person_needs(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve", summary="product has no ready replica")
    told = Told()
    p, s = ports(cluster, Figures(product=dict(HEALTHY)), notifier=told), settings(dashboard_url=DASHBOARD + "/")
    st = run(cluster, p, s, limit=10)  # waiting: ticked again and again, told once
    assert st["phase"] == "AwaitingApproval" and told.phases == ["AwaitingApproval"]
    [n] = told.notices
    assert (n.namespace, n.name, n.service, n.summary) == (NS, "inc", "product", "product has no ready replica")
    assert n.diagnosis == st["diagnosis"]["rootCause"] and n.diagnosis
    assert "approve=attempt-1" in n.message and n.at == st["timeline"][-1]["at"]
    assert n.link == f"{DASHBOARD}/?namespace={NS}&incident=inc"
    assert n.key.endswith("/AwaitingApproval-attempt-1")
    assert st["notified"]["AwaitingApproval-attempt-1"]["outcome"] == "delivered"
    approve(cluster, "attempt-1")
    st = run(cluster, p, s)
    assert st["phase"] == "Resolved" and told.phases == ["AwaitingApproval", "Resolved"]
    assert set(st["notified"]) == {"AwaitingApproval-attempt-1", "Resolved"}
    schema = yaml.safe_load((CRDS / "incidents.sre.stratus.dev.yaml").read_text())[
        "spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    jsonschema.validate(st, schema)  # the record is what the CRD declares (the API server keeps it)
    assert unknown_fields(st, schema) == []
    # The next operator (a new process, a new notifier) tells nothing again.
    again = Told()
    assert not handlers.runs(st, handlers_memo(again))
    run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), notifier=again), s, limit=5)
    assert again.notices == []


def handlers_memo(notifier: Any) -> Any:
    class Memo:
        pass
    memo = Memo()
    memo.notifier = notifier  # type: ignore[attr-defined]
    return memo


def test_an_escalation_is_told(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve")
    told = Told()
    p, s = ports(cluster, Figures(product=dict(HEALTHY)), notifier=told), settings()
    run(cluster, p, s, until={"AwaitingApproval"})
    approve(cluster, "attempt-1", key=pipeline.REJECT_ANNOTATION)
    st = run(cluster, p, s)
    assert st["phase"] == "Escalated" and told.phases == ["AwaitingApproval", "Escalated"]
    assert "rejected by alice" in told.notices[-1].message and told.notices[-1].link == ""


def test_a_notice_not_delivered_before_a_restart_is_told_by_the_next_operator(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    first = Told(hold=True)  # the process stops before its sinks answer
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), notifier=first), settings())
    assert st["phase"] == "Resolved" and first.phases == ["Resolved"] and "notified" not in st
    # kopf starts the daemon of a finished Incident again only while a notice is pending.
    second = Told()
    assert handlers.runs(st, handlers_memo(second)) and not handlers.runs(st, handlers_memo(None))
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), notifier=second), settings(), limit=5)
    assert second.phases == ["Resolved"] and st["notified"]["Resolved"]["outcome"] == "delivered"
    assert not handlers.runs(st, handlers_memo(second))


def test_a_broken_notifier_changes_nothing_the_pipeline_does(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), notifier=Told(broken=True)), settings())
    assert st["phase"] == "Resolved" and "notified" not in st


def test_odd_status_values_make_no_notice_or_a_safe_one() -> None:
    base: dict[str, Any] = {"metadata": {"name": "x", "namespace": NS, "uid": "u1"}, "spec": {"service": 5}}
    assert notices.due({**base, "status": {"phase": "Mitigating"}}, "") is None
    assert notices.due({**base, "status": {"phase": "Resolved", "notified": {"Resolved": {}}}}, "") is None
    odd = notices.due({**base, "status": {"phase": "AwaitingApproval", "attempts": "two", "notified": "yes",
                                          "diagnosis": "not a mapping", "timeline": "none"}}, "")
    assert odd is not None and odd.key == "u1/AwaitingApproval-attempt-1" and odd.service == "" and odd.diagnosis == ""
    assert notices.key_of({"phase": "AwaitingApproval", "attempts": 1}) == "AwaitingApproval-attempt-2"


def test_the_webhook_and_slack_messages() -> None:
    n = Notice(key="u1/Resolved", phase="Resolved", namespace=NS, name="inc", service="product",
               summary="errors <50%> & more", message="validated", diagnosis="scaled to zero", link="http://d/?incident=inc",
               at="2026-01-01T00:00:00Z")
    doc = webhook_body(n)
    assert doc["source"] == "sre-operator" and doc["phase"] == "Resolved" and doc["diagnosis"] == "scaled to zero"
    assert doc["link"] == "http://d/?incident=inc" and doc["key"] == "u1/Resolved"
    text = slack_body(n)["text"]
    assert text.startswith("*Resolved*: incident `shop/inc` (product): errors &lt;50%&gt; &amp; more")
    assert "Diagnosis: scaled to zero" in text and text.endswith("<http://d/?incident=inc|Open in the dashboard>")
    assert settings(notify_webhook_url=" http://h/x ", notify_slack_url="").sinks()[0].url == "http://h/x"
    assert [s.kind for s in settings(notify_webhook_url="http://a", notify_slack_url="http://b").sinks()] == [
        "webhook", "slack"]
