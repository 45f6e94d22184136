"""Blast-radius limits, checked before an attempt's first action (pure: the pipeline passes the
namespace's Incidents in):

- at most `max_concurrent` Incidents acting (Mitigating, Validating, Undoing) at once: the others
  wait their turn, so one bad reading cannot set the whole shop rolling;
- never two Incidents acting on the same workload at once: the second waits;
- at most `max_actions_per_hour` actions on one workload within an hour, across Incidents: past
  that, acting again is not mitigation but flapping, and a person is called (Escalated).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..domain.clock import parse
from ..domain.policy import Caps
from ..domain.vocabulary import ACTING


@dataclass(frozen=True)
class Decision:
    verdict: str  # go | wait | escalate
    message: str = ""


def _targets(inc: dict[str, Any]) -> set[str]:
    st = inc.get("status") or {}
    acts = (st.get("plan") or {}).get("actions") or []
    return {f"{a['target']['kind']}/{a['target']['name']}" for a in acts}


DEFAULT_CAPS = Caps()


def check(me: dict[str, Any], others: list[dict[str, Any]], targets: set[str], now: dt.datetime,
          caps: Caps = DEFAULT_CAPS) -> Decision:
    """May `me` start acting on `targets` (kind/name) now?"""
    name = me["metadata"]["name"]
    acting = [o for o in others if o["metadata"]["name"] != name and (o.get("status") or {}).get("phase") in ACTING]
    for o in acting:
        shared = _targets(o) & targets
        if shared:
            return Decision("wait", f"waiting: incident {o['metadata']['name']} is acting on "
                                    f"{', '.join(sorted(shared))}")
    if len(acting) >= caps.max_concurrent:
        return Decision("wait", f"waiting: {len(acting)} incidents are acting (at most {caps.max_concurrent} at once)")
    hour_ago = now - dt.timedelta(hours=1)
    for target in sorted(targets):
        kind, tname = target.split("/", 1)
        everyone = {o["metadata"]["name"]: o for o in [*others, me]}.values()  # me once, as I am now
        recent = [a for o in everyone for a in (o.get("status") or {}).get("actions") or []
                  if a.get("target", {}).get("kind") == kind and a.get("target", {}).get("name") == tname
                  and (parse(a.get("startedAt")) or hour_ago) > hour_ago and a.get("outcome") != "failed"]
        if len(recent) >= caps.max_actions_per_hour:
            return Decision("escalate", f"{target} had {len(recent)} actions in the last hour (limit "
                                        f"{caps.max_actions_per_hour}): acting again would be flapping")
    return Decision("go")
