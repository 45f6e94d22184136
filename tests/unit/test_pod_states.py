"""Runtime states read off pods: the ones that never clear by waiting are told apart at once."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sre_operator.detection.pod_states import read

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(name: str, *, ready: bool = True, age: float = 100.0, waiting: str = "", restarts: int = 0,
        last: str = "", scheduled: bool = True, deleting: bool = False) -> dict[str, Any]:
    created = (NOW - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state: dict[str, Any] = {"waiting": {"reason": waiting, "message": "why"}} if waiting else {"running": {}}
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    if not scheduled:
        conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/1 nodes are available: node(s) didn't match Pod's node affinity/selector"})
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "status": {"conditions": conds, "containerStatuses": [
        {"name": "c", "restartCount": restarts, "state": state,
         "lastState": {"terminated": {"reason": last}} if last else {}}]}}


def test_healthy_pods() -> None:
    s = read([pod("a"), pod("b", age=10)], NOW)
    assert (s.pods, s.ready, s.never_starting, s.crash_looping) == (2, 2, [], False)
    assert s.oldest_unready_seconds is None and s.newest_pod_seconds == 10


def test_pods_that_never_start_are_named_with_their_reason() -> None:
    s = read([pod("a", ready=False, waiting="ImagePullBackOff"),
              pod("b", ready=False, waiting="CreateContainerConfigError"),
              pod("c", ready=False, scheduled=False)], NOW)
    assert s.image_pull == ["a/c: ImagePullBackOff: why"]
    assert s.config_errors == ["b/c: CreateContainerConfigError: why"]
    assert s.unschedulable[0].startswith("c: 0/1 nodes")
    assert len(s.never_starting) == 3 and s.ready == 0


def test_crash_loops_oom_kills_and_restarts() -> None:
    s = read([pod("a", ready=False, waiting="CrashLoopBackOff", restarts=4, last="OOMKilled"),
              pod("b", restarts=1)], NOW)
    assert s.crash_looping and s.oom_killed == 1 and s.restarts == 5
    assert s.never_starting == []


def test_pods_being_deleted_are_left_out_and_unready_age_is_the_oldest() -> None:
    s = read([pod("old", deleting=True, ready=False, waiting="ImagePullBackOff"),
              pod("a", ready=False, age=50), pod("b", ready=False, age=20)], NOW)
    assert s.pods == 2 and s.never_starting == [] and s.oldest_unready_seconds == 50
