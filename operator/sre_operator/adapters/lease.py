"""Leader election on a `coordination.k8s.io/v1` Lease, as Kubernetes' own controllers do it, so the
operator can run as several replicas: one acts, the others wait to take over.

A replica holds the Lease while it renews it every `renew_seconds`; the others take it once it has
not been renewed for `lease_seconds` (the holder died) or was released (the holder stopped cleanly).
Every write carries the Lease's resourceVersion, so two replicas that try at once cannot both win.
A leader that cannot renew in time stops at once (the process exits and restarts as a candidate):
two replicas never act at the same time. What a leader was doing is not lost: an Incident records
each action's intent before doing it, and the next leader resumes from that record.

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


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    text = text.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)


def decide(spec: dict[str, Any] | None, identity: str, now: dt.datetime) -> str:
    """`mine` (we hold it: renew), `take` (free, released or expired) or `wait` (someone else's)."""
    if not spec or not spec.get("holderIdentity"):
        return "take"
    if spec["holderIdentity"] == identity:
        return "mine"
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = float(spec.get("leaseDurationSeconds") or 15)
    if renewed is None or (now - renewed).total_seconds() > duration:
        return "take"
    return "wait"


@dataclass
class LeaderElector:
    namespace: str
    name: str
    identity: str
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        self.api = client.CoordinationV1Api()
        self.lost = threading.Event()

    def _read(self) -> dict[str, Any] | None:
        try:
            # _preload_content=False: the raw HTTP answer (the client's annotation names the model)
            resp: Any = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False)
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

    def try_once(self) -> bool:
        """One attempt to take or keep the Lease; True when we hold it afterwards."""
        lease = self._read()
        now = _now()
        verdict = decide((lease or {}).get("spec"), self.identity, now)
        if verdict == "wait":
            return False
        # The client takes the API's JSON as a dict as well as a V1Lease (its annotation names only the model).
        body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(lease, now, transition=verdict == "take")}
        try:
            if lease is None:
                self.api.create_namespaced_lease(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status in (409, 422):  # another replica won the race
                return False
            raise
        if verdict == "take":
            log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
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

    def keep(self, on_lost: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Renews in the background; calls `on_lost` if the Lease cannot be kept for `lease_seconds`
        (minus a margin) or another replica holds it."""
        def loop() -> None:
            last_ok = time.monotonic()
            while not stop.wait(self.renew_seconds):
                try:
                    if self.try_once():
                        last_ok = time.monotonic()
                        continue
                    log.error("%s lost lease %s/%s to another replica", self.identity, self.namespace, self.name)
                except Exception as exc:
                    log.warning("renewing lease %s/%s: %s", self.namespace, self.name, exc)
                    if time.monotonic() - last_ok < self.lease_seconds - self.renew_seconds:
                        continue
                    log.exception("%s could not renew lease %s/%s in time", self.identity, self.namespace, self.name)
                self.lost.set()
                on_lost()
                return
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
                self.api.replace_namespaced_lease(self.name, self.namespace, released)
                log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as exc:  # noqa: BLE001 - best effort: the Lease expires anyway
            log.warning("releasing lease %s/%s: %s", self.namespace, self.name, exc)
