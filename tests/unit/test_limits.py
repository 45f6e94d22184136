"""Blast-radius limits: concurrent incidents, one incident per workload at a time, actions per
workload per hour."""
from __future__ import annotations

import datetime as dt

from sre_operator.domain.policy import Caps
from sre_operator.incident.limits import check

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def inc(name: str, phase: str = "Planning", targets: tuple[str, ...] = (), actions: list[dict] | None = None) -> dict:
    plan = [{"type": "rollout-restart", "target": {"kind": t.split("/")[0], "name": t.split("/")[1]}}
            for t in targets]
    return {"metadata": {"name": name}, "status": {"phase": phase, "plan": {"actions": plan},
                                                   "actions": actions or []}}


def action(name: str, minutes_ago: int, outcome: str = "applied") -> dict:
    at = (NOW - dt.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "rollout-restart", "target": {"kind": "Deployment", "name": name}, "startedAt": at,
            "outcome": outcome}


def test_go_when_nothing_else_acts() -> None:
    me = inc("a", targets=("Deployment/payment",))
    assert check(me, [me, inc("b", "Resolved", ("Deployment/payment",))], {"Deployment/payment"}, NOW).verdict == "go"


def test_two_incidents_never_act_on_one_workload_at_once() -> None:
    me = inc("a", targets=("Deployment/gateway",))
    other = inc("b", "Validating", ("ConfigMap/gateway-config", "Deployment/gateway"))
    d = check(me, [me, other], {"Deployment/gateway"}, NOW)
    assert d.verdict == "wait" and "incident b is acting on Deployment/gateway" in d.message


def test_at_most_n_incidents_act_at_once() -> None:
    me = inc("a", targets=("Deployment/payment",))
    others = [inc(f"o{i}", "Mitigating", (f"Deployment/w{i}",)) for i in range(2)]
    assert check(me, [me, *others], {"Deployment/payment"}, NOW, Caps(max_concurrent=2)).verdict == "wait"
    assert check(me, [me, *others], {"Deployment/payment"}, NOW, Caps(max_concurrent=3)).verdict == "go"


def test_too_many_actions_on_a_workload_within_an_hour_escalate() -> None:
    me = inc("a", targets=("Deployment/payment",), actions=[action("payment", 5), action("payment", 20)])
    old = inc("b", "Resolved", actions=[action("payment", 30), action("payment", 90), action("payment", 10, "failed")])
    d = check(me, [me, old], {"Deployment/payment"}, NOW, Caps(max_actions_per_hour=3))
    assert d.verdict == "escalate" and "3 actions in the last hour" in d.message
    assert check(me, [me, old], {"Deployment/payment"}, NOW, Caps(max_actions_per_hour=4)).verdict == "go"
