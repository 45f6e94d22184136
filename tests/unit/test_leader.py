"""Leader election: the pure rule (who may take the Lease, measured on the candidate's own clock
from when it saw the record change) and the elector against a stand-in for the Lease API that can
hang, so one leader at most holds even when a renewal never returns."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

from kubernetes.client.exceptions import ApiException

from sre_operator.adapters.lease import LeaderElector, _micro, decide

NOW = dt.datetime(2026, 11, 25, 9, 0, 0, tzinfo=dt.UTC)


def spec(holder: str, renewed_ago: float = 0, duration: int = 15) -> dict[str, Any]:
    return {"holderIdentity": holder, "leaseDurationSeconds": duration,
            "renewTime": _micro(NOW - dt.timedelta(seconds=renewed_ago))}


def test_a_free_or_released_lease_is_taken() -> None:
    assert decide(None, "a", 0) == "take"
    assert decide({"holderIdentity": ""}, "a", 0) == "take"


def test_our_own_lease_is_renewed_and_anothers_respected_until_it_stays_unchanged_for_its_duration() -> None:
    assert decide(spec("a"), "a", 3) == "mine"
    assert decide(spec("a"), "a", 40) == "mine"  # still ours to renew, if nobody took it
    assert decide(spec("b"), "a", 14.9) == "wait"
    assert decide(spec("b"), "a", 15.1) == "take"
    assert decide(spec("b", duration=6), "a", 7) == "take"
    assert decide({"holderIdentity": "b", "leaseDurationSeconds": "junk"}, "a", 3) == "wait"


def test_the_holders_timestamps_are_not_compared_with_our_clock() -> None:
    """A holder whose clock runs an hour behind (its renewTime looks an hour old) keeps the Lease
    while it renews; one whose clock runs ahead loses it once it stops."""
    assert decide(spec("b", renewed_ago=3600), "a", 1) == "wait"
    assert decide(spec("b", renewed_ago=-3600), "a", 16) == "take"


class LeaseApi:
    """The Lease calls of `CoordinationV1Api`, in memory; `hang` makes every call block until
    released (a network that swallows requests); records each request timeout asked for."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.hang = threading.Event()
        self.released = threading.Event()
        self.timeouts: list[object] = []

    def _call(self, timeout: object) -> None:
        self.timeouts.append(timeout)
        if self.hang.is_set():
            self.released.wait(60)  # a renew that hangs for 60 s

    def read_namespaced_lease(self, name: str, namespace: str, **kw: Any) -> Any:
        self._call(kw.get("_request_timeout"))
        if self.lease is None:
            raise ApiException(status=404)
        return SimpleNamespace(data=json.dumps(self.lease))

    def _store(self, body: dict[str, Any]) -> None:
        self.version += 1
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **kw: Any) -> None:
        self._call(kw.get("_request_timeout"))
        if self.lease is not None:
            raise ApiException(status=409)
        self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **kw: Any) -> None:
        self._call(kw.get("_request_timeout"))
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409)
        self._store(body)


def elector(api: LeaseApi, identity: str, lease: float = 3.0) -> LeaderElector:
    e = LeaderElector("ns", "leader", identity, lease_seconds=lease, renew_seconds=lease / 6, retry_seconds=0.1)
    e.api = api  # type: ignore[assignment]
    return e


def test_a_renew_that_hangs_for_60s_still_ends_leadership_before_a_standby_may_take_over() -> None:
    api = LeaseApi()
    leader = elector(api, "a")
    assert leader.try_once()
    lost_at: list[float] = []
    stop = threading.Event()
    try:
        leader.keep(on_lost=lambda: lost_at.append(time.monotonic()), stop=stop)
        time.sleep(1.0)
        assert not lost_at  # renewing fine
        assert all(isinstance(t, float) and t < leader.lease_seconds for t in api.timeouts)
        last_renewal = leader.renewed_at
        assert last_renewal is not None
        api.hang.set()
        deadline = time.monotonic() + leader.lease_seconds + 1
        while not lost_at and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost_at, "leadership not given up while the renew hung"
        assert lost_at[0] - last_renewal <= leader.renew_deadline + 0.3 < leader.lease_seconds
        assert leader.lost.is_set()
    finally:
        stop.set()
        api.released.set()


def test_a_standby_takes_over_only_after_the_record_stood_still_for_a_lease_on_its_own_clock() -> None:
    api = LeaseApi()
    leader, standby = elector(api, "a", lease=2.0), elector(api, "b", lease=2.0)
    assert leader.try_once()
    api.lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"  # type: ignore[index]  # a skewed clock
    started = time.monotonic()
    assert not standby.try_once()  # first sight: the lease counts from now, not from 2000
    for _ in range(3):  # the holder keeps renewing: never taken, however old its renewTime looks
        time.sleep(0.8)
        assert leader.try_once()
        assert not standby.try_once()
    time.sleep(0.5)
    assert not standby.try_once()  # unchanged for 0.5 s only
    time.sleep(2.0)  # the holder died: the record stands still for longer than the lease
    assert standby.try_once()
    assert api.lease["spec"]["holderIdentity"] == "b"  # type: ignore[index]
    assert time.monotonic() - started > 4.5
