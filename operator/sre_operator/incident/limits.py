"""Blast-radius limits, checked before an attempt's first action (pure: the pipeline passes the
namespace's Incidents in):

- at most `max_concurrent` Incidents acting (Mitigating, Validating, Undoing) at once: the others
  wait their turn, so one bad reading cannot set the whole shop rolling;
- never two Incidents acting on the same workload at once: the second waits;
- at most `max_actions_per_hour` actions on one workload within an hour, across Incidents: past
  that, acting again is not mitigation but flapping, and a person is called (Escalated). Counted
  from the operator's own action ledger (`domain.snapshot.ACTION_LEDGER`, one entry per action
  begun) as well as from the Incidents' records: deleting finished Incidents resets nothing.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from ..domain.clock import parse, stamp
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


def ledger_key(target: str) -> str:
    """A target (`Kind/name`) as a key of the ledger's data (a ConfigMap key allows no `/`)."""
    return target.replace("/", ".", 1)


def _entries(ledger: dict[str, str] | None, target: str) -> dict[str, str]:
    """A target's ledger entries (action id → when it began); a value that is not one is none."""
    try:
        value = json.loads((ledger or {}).get(ledger_key(target)) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _in_ledger(ledger: dict[str, str] | None, target: str, since: dt.datetime) -> int:
    return sum(1 for at in _entries(ledger, target).values() if (parse(at) or since) > since)


def recorded(ledger: dict[str, str] | None, target: str, action_id: str, now: dt.datetime) -> dict[str, str]:
    """The ledger's data entry for `target` with the action `action_id` begun now (entries older than
    an hour dropped: nothing counts them)."""
    hour_ago = now - dt.timedelta(hours=1)
    kept = {k: v for k, v in _entries(ledger, target).items() if (parse(v) or hour_ago) > hour_ago}
    kept.setdefault(action_id, stamp(now))
    return {ledger_key(target): json.dumps(kept, sort_keys=True)}


def check(me: dict[str, Any], others: list[dict[str, Any]], targets: set[str], now: dt.datetime,
          caps: Caps = DEFAULT_CAPS, ledger: dict[str, str] | None = None) -> Decision:
    """May `me` start acting on `targets` (kind/name) now? `ledger`: the action ledger's data."""
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
        count = max(len(recent), _in_ledger(ledger, target, hour_ago))
        if count >= caps.max_actions_per_hour:
            return Decision("escalate", f"{target} had {count} actions in the last hour (limit "
                                        f"{caps.max_actions_per_hour}): acting again would be flapping")
    return Decision("go")
