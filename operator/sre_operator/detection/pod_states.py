"""What the pods of one workload say about it, read off their status as the kubelet reports it: the
runtime states an SRE looks at first. Some are conclusive the moment they appear (an image that
cannot be pulled, a container whose config cannot be built, a pod no node will take): such a pod
will never start by waiting, so there is no point in waiting the 45 s a merely slow pod gets.

Pure: pods come in as the API's dicts; `now` is passed in."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..domain.clock import parse

# Waiting reasons that never clear by themselves (the pod's spec or its references must change).
PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@dataclass(frozen=True)
class PodStates:
    """One workload's pods, boiled down (pods being deleted are left out)."""
    pods: int = 0
    ready: int = 0
    restarts: int = 0
    crash_looping: bool = False
    oom_killed: int = 0  # containers whose last termination was an OOM kill
    image_pull: list[str] = field(default_factory=list)  # "pod/container: reason: message"
    config_errors: list[str] = field(default_factory=list)
    unschedulable: list[str] = field(default_factory=list)  # "pod: message"
    oldest_unready_seconds: float | None = None  # the longest a live pod has been not Ready
    newest_pod_seconds: float | None = None

    @property
    def never_starting(self) -> list[str]:
        """Pods that will not start however long one waits, and why."""
        return [*self.image_pull, *self.config_errors, *self.unschedulable]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _age(pod: dict[str, Any], now: dt.datetime) -> float | None:
    created = parse(pod["metadata"].get("creationTimestamp"))
    return None if created is None else max(0.0, (now - created).total_seconds())


def read(pods: list[dict[str, Any]], now: dt.datetime) -> PodStates:
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    pull: list[str] = []
    config: list[str] = []
    unschedulable: list[str] = []
    restarts = oom = 0
    crash = False
    for p in live:
        name = p["metadata"]["name"]
        status = p.get("status") or {}
        unschedulable.extend(f"{name}: {str(cond.get('message', 'no node fits'))[:200]}"
                             for cond in status.get("conditions") or []
                             if cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                             and cond.get("reason") == "Unschedulable")
        for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            restarts += int(c.get("restartCount") or 0)
            waiting = (c.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            detail = f"{name}/{c.get('name')}: {reason}: {str(waiting.get('message', ''))[:200]}".rstrip(": ")
            if reason in PULL_ERRORS:
                pull.append(detail)
            elif reason in CONFIG_ERRORS:
                config.append(detail)
            elif reason == "CrashLoopBackOff":
                crash = True
            if ((c.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                oom += 1
    unready = [a for p in live if not _ready(p) and (a := _age(p, now)) is not None]
    ages = [a for p in live if (a := _age(p, now)) is not None]
    return PodStates(pods=len(live), ready=sum(1 for p in live if _ready(p)), restarts=restarts,
                     crash_looping=crash, oom_killed=oom, image_pull=pull, config_errors=config,
                     unschedulable=unschedulable, oldest_unready_seconds=max(unready, default=None),
                     newest_pod_seconds=min(ages, default=None))
