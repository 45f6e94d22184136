"""Leader election on a `coordination.k8s.io/v1` Lease, as Kubernetes' own controllers do it, so the
operator can run as several replicas: one acts, the others wait to take over.

A replica holds the Lease while it renews it every `renew_seconds`; the others take it once it has
not changed for `lease_seconds` (the holder died) or was released (the holder stopped cleanly).
Every write carries the Lease's resourceVersion, so two replicas that try at once cannot both win.

One leader at most, whatever the clocks and the network do (as client-go's leader election):
- a standby measures a holder's silence from when *it* last saw the record change, on its own
  monotonic clock, never by comparing the holder's `renewTime` with its own wall clock (the two
  machines' clocks may disagree by more than a lease);
- every request carries a timeout shorter than the lease, and each renewal runs in its own thread,
  so a request that hangs cannot hold the leader up;
- a leader whose last successful renewal *began* more than `renew_deadline` ago (shorter than the
  lease) steps down at once (the process exits and restarts as a candidate): a standby, which
  saw that renewal's record no earlier than it began, cannot take over before then.

What a leader was doing is not lost: an Incident records each action's intent before doing it,
and the next leader resumes from that record.

`decide` is the pure rule; `LeaderElector` the Kubernetes I/O around it."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("sre_operator.leader")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide(spec: dict[str, Any] | None, identity: str, unchanged_for: float) -> str:
    """`mine` (we hold it: renew), `take` (free, released, or unchanged for longer than its
    duration) or `wait` (someone else's). `unchanged_for`: seconds, on our own monotonic clock,
    since we first saw the record as it is now (the holder's timestamps are not compared with our
    clock)."""
    if not spec or not spec.get("holderIdentity"):
        return "take"
    if spec["holderIdentity"] == identity:
        return "mine"
    try:
        duration = float(spec.get("leaseDurationSeconds") or 15)
    except (TypeError, ValueError):
        duration = 15.0
    return "take" if unchanged_for > duration else "wait"


@dataclass
class LeaderElector:
    namespace: str
    name: str
    identity: str
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    retry_seconds: float = 2.0
    renew_deadline: float = 0.0  # 0: two thirds of the lease (client-go's 10 s of 15)

    def __post_init__(self) -> None:
        self.api = client.CoordinationV1Api()
        self.lost = threading.Event()
        self.renew_deadline = self.renew_deadline or self.lease_seconds * 2 / 3
        if not self.renew_seconds < self.renew_deadline < self.lease_seconds:
            raise ValueError("lease election needs renew_seconds < renew_deadline < lease_seconds")
        # Every request gives up well within the deadline (a hung one cannot outlast the lease).
        self.request_seconds = max(0.5, (self.renew_deadline - self.renew_seconds) / 2)
        self.renewed_at: float | None = None  # monotonic: when our last successful write began
        self._seen: dict[str, Any] | None = None  # the other holder's record as last seen
        self._seen_at = time.monotonic()

    def _read(self) -> dict[str, Any] | None:
        try:
            # _preload_content=False: the raw HTTP answer (the client's annotation names the model)
            resp: Any = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                       _request_timeout=self.request_seconds)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        lease: dict[str, Any] = json.loads(resp.data)
        return lease

    def _spec(self, old: dict[str, Any] | None, now: dt.datetime, transition: bool) -> dict[str, Any]:
        spec = dict((old or {}).get("spec") or {})
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_seconds),
                    renewTime=_micro(now))
        if transition:
            spec["acquireTime"] = _micro(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if old else 0)
        return spec

    def _unchanged_for(self, lease: dict[str, Any] | None) -> float:
        """Seconds since we first saw the Lease's record as it is now (our monotonic clock)."""
        record = {"spec": (lease or {}).get("spec"),
                  "resourceVersion": ((lease or {}).get("metadata") or {}).get("resourceVersion")}
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()
        return time.monotonic() - self._seen_at

    def try_once(self) -> bool:
        """One attempt to take or keep the Lease; True when we hold it afterwards."""
        began = time.monotonic()
        lease = self._read()
        now = _now()
        verdict = decide((lease or {}).get("spec"), self.identity, self._unchanged_for(lease))
        if verdict == "wait":
            return False
        # The client takes the API's JSON as a dict as well as a V1Lease (its annotation names only the model).
        body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(lease, now, transition=verdict == "take")}
        try:
            if lease is None:
                self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.request_seconds)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                self.api.replace_namespaced_lease(self.name, self.namespace, body,
                                                  _request_timeout=self.request_seconds)
        except ApiException as exc:
            if exc.status in (409, 422):  # another replica won the race
                return False
            raise
        if verdict == "take":
            log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
        self.renewed_at = began
        return True

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Blocks until we lead (True) or `stop` is set (False)."""
        stop = stop or threading.Event()
        waiting_logged = False
        while not stop.is_set():
            try:
                if self.try_once():
                    return True
            except Exception as exc:  # noqa: BLE001 - the API server may be briefly away: try again
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            if not waiting_logged:
                log.info("%s is standing by: lease %s/%s is held by another replica", self.identity,
                         self.namespace, self.name)
                waiting_logged = True
            stop.wait(self.retry_seconds)
        return False

    def _renew(self, timeout: float) -> bool | None:
        """One renewal in its own thread, waited for at most `timeout` seconds: True (renewed),
        False (another replica holds the Lease), None (an error, or no answer in time)."""
        result: list[bool | None] = [None]

        def attempt() -> None:
            try:
                result[0] = self.try_once()
            except Exception as exc:  # noqa: BLE001 - the API server may be briefly away: the deadline decides
                log.warning("renewing lease %s/%s: %s", self.namespace, self.name, exc)
        worker = threading.Thread(target=attempt, name="lease-renew", daemon=True)
        worker.start()
        worker.join(max(0.0, timeout))
        return None if worker.is_alive() else result[0]

    def keep(self, on_lost: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Renews in the background; calls `on_lost` once no renewal has succeeded within
        `renew_deadline` of the start of the last one that did (before any standby may take over,
        however a request hangs), or when another replica holds the Lease."""
        def lost(why: str) -> None:
            log.error("%s steps down from lease %s/%s: %s", self.identity, self.namespace, self.name, why)
            self.lost.set()
            on_lost()

        def loop() -> None:
            last_ok = self.renewed_at if self.renewed_at is not None else time.monotonic()
            pause = self.renew_seconds
            while not stop.wait(max(0.0, min(pause, last_ok + self.renew_deadline - time.monotonic()))):
                left = last_ok + self.renew_deadline - time.monotonic()
                outcome = self._renew(left) if left > 0 else None
                if outcome is True and self.renewed_at is not None:
                    last_ok, pause = self.renewed_at, self.renew_seconds
                elif outcome is False:
                    lost("another replica holds it")
                    return
                elif time.monotonic() >= last_ok + self.renew_deadline:
                    lost(f"not renewed within {self.renew_deadline:.1f}s")
                    return
                else:
                    pause = self.retry_seconds
        t = threading.Thread(target=loop, name="lease-renewer", daemon=True)
        t.start()
        return t

    def release(self) -> None:
        """Give the Lease up at a clean stop, so a standby takes over at once."""
        try:
            lease = self._read()
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["renewTime"] = _micro(_now() - dt.timedelta(seconds=3600))
                released: Any = lease  # a dict, as in try_once
                self.api.replace_namespaced_lease(self.name, self.namespace, released,
                                                  _request_timeout=self.request_seconds)
                log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as exc:  # noqa: BLE001 - best effort: the Lease expires anyway
            log.warning("releasing lease %s/%s: %s", self.namespace, self.name, exc)
