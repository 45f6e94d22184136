"""The leader election rule, pure: who may take the Lease and when."""
from __future__ import annotations

import datetime as dt

from sre_operator.adapters.lease import _micro, decide

NOW = dt.datetime(2026, 11, 25, 9, 0, 0, tzinfo=dt.UTC)


def spec(holder: str, renewed_ago: float, duration: int = 15) -> dict:
    return {"holderIdentity": holder, "leaseDurationSeconds": duration,
            "renewTime": _micro(NOW - dt.timedelta(seconds=renewed_ago))}


def test_a_free_or_released_lease_is_taken() -> None:
    assert decide(None, "a", NOW) == "take"
    assert decide({"holderIdentity": ""}, "a", NOW) == "take"


def test_our_own_lease_is_renewed_and_anothers_respected_until_it_expires() -> None:
    assert decide(spec("a", 3), "a", NOW) == "mine"
    assert decide(spec("a", 40), "a", NOW) == "mine"  # still ours to renew, if nobody took it
    assert decide(spec("b", 14.9), "a", NOW) == "wait"
    assert decide(spec("b", 15.1), "a", NOW) == "take"
    assert decide(spec("b", 7, duration=6), "a", NOW) == "take"
    assert decide({"holderIdentity": "b", "renewTime": "2026-11-25T08:59:59Z"}, "a", NOW) == "wait"
