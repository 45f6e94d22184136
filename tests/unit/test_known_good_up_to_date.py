"""The detector's known-good bookkeeping over many cycles (`signals.remembering`): a namespace read
again with the same inputs (the record's and every object's resourceVersion, the Services that
reach no pod) is not derived again, while any change is, and so is an object that was too new to
vouch for, once it is old enough; the record comes out as if every cycle derived it."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from sre_operator.detection import known_good, signals
from sre_operator.detection.known_good import MIN_AGE_SECONDS, inputs
from sre_operator.detection.signals import KNOWN_GOOD, Reader, UpToDate, remembering
from sre_operator.domain.snapshot import Snapshot
from tests.fakes.cluster import MemoryCluster, shop

NS = "shop"


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> MemoryCluster:
    cluster = shop(MemoryCluster(), NS)
    cluster.tick(600)
    monkeypatch.setattr(signals, "now", cluster.clock)  # the record's ages on the fake's clock
    return cluster


@pytest.fixture
def derived(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The namespaces `known_good.remember` was asked to derive a record for, in order."""
    calls: list[str] = []
    real = known_good.remember

    def spy(previous: dict[str, str], **kwargs: object) -> dict[str, str]:
        calls.append(NS)
        return real(previous, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(known_good, "remember", spy)
    return calls


def cycle(cluster: MemoryCluster, remember: Callable[[Snapshot], None]) -> None:
    """One detector reading of the namespace, healthy: recorded as known-good."""
    for snap in Snapshot.read_each(cluster, [NS], cluster.clock()):
        remember(snap)
    cluster.tick(5)


def record(cluster: MemoryCluster) -> dict[str, str]:
    return dict((cluster.get("ConfigMap", NS, KNOWN_GOOD) or {}).get("data") or {})


def steady(cluster: MemoryCluster, remember: Callable[[Snapshot], None], derived: list[str]) -> None:
    """Cycles until the record is written, then found up to date once."""
    cycle(cluster, remember)  # no record yet: derived and written
    cycle(cluster, remember)  # the record just written: derived again, found up to date
    assert len(derived) == 2 and record(cluster)


def test_a_namespace_read_again_unchanged_is_not_derived_again(cluster: MemoryCluster, derived: list[str]) -> None:
    remember = remembering(cluster)
    steady(cluster, remember, derived)
    written, before = len(cluster.writes), record(cluster)
    for _ in range(3):
        cycle(cluster, remember)
    assert len(derived) == 2 and len(cluster.writes) == written and record(cluster) == before


def test_a_changed_object_is_derived_again_and_recorded(cluster: MemoryCluster, derived: list[str]) -> None:
    remember = remembering(cluster)
    steady(cluster, remember, derived)
    cluster.patch("Deployment", NS, "order", "merge", {"spec": {"replicas": 3}})
    cycle(cluster, remember)
    assert len(derived) == 3 and record(cluster)["_replicas.order"] == "3"


def test_a_record_changed_by_someone_else_is_derived_again_and_put_right(cluster: MemoryCluster,
                                                                        derived: list[str]) -> None:
    remember = remembering(cluster)
    steady(cluster, remember, derived)
    cluster.patch("ConfigMap", NS, KNOWN_GOOD, "merge", {"data": {"_replicas.order": "7"}})
    cycle(cluster, remember)
    assert len(derived) == 3 and record(cluster)["_replicas.order"] == "1"


def test_an_object_too_new_to_vouch_for_is_derived_again_once_old_enough(cluster: MemoryCluster,
                                                                        derived: list[str]) -> None:
    remember = remembering(cluster)
    steady(cluster, remember, derived)
    old = record(cluster)["_object.Deployment.order"]
    cluster.patch("Deployment", NS, "order", "merge",
                  {"spec": {"template": {"metadata": {"annotations": {"changed": "yes"}}}}})
    cycle(cluster, remember)  # too new: the healthy copy on record stays, nothing written
    assert record(cluster)["_object.Deployment.order"] == old
    cluster.tick(MIN_AGE_SECONDS)
    cycle(cluster, remember)  # the same inputs, old enough now: vouched for
    assert len(derived) == 4 and '"changed": "yes"' in record(cluster)["_object.Deployment.order"]


def test_every_cycle_derived_or_not_leaves_the_same_record(cluster: MemoryCluster) -> None:
    """The same changes seen through `remembering` and through a derivation every cycle."""
    other = shop(MemoryCluster(), NS)
    other.tick(600)
    remember = remembering(cluster)

    def always(snap: Snapshot) -> None:
        Reader(other, snap.namespace).remember_known_good(snapshot=snap)
    for step in range(8):
        for c in (cluster, other):
            if step == 3:
                c.patch("Service", NS, "payment", "merge", {"metadata": {"labels": {"tier": "back"}}})
            if step == 5:
                c.patch("ConfigMap", NS, "gateway-config", "merge", {"data": {"extra": "1"}})
        cycle(cluster, remember)
        other.now = cluster.now - dt.timedelta(seconds=5)
        cycle(other, always)
        cluster.tick(30)
        other.tick(30)
        assert record(cluster) == record(other), step


def test_the_inputs_tell_what_the_record_is_derived_from(cluster: MemoryCluster) -> None:
    snap = next(Snapshot.read_each(cluster, [NS], cluster.clock()))
    deployments, services, config_maps = snap.of("Deployment"), snap.of("Service"), snap.of("ConfigMap")

    def key(version: str | None = "5", previous: dict[str, str] | None = None,
            unreachable: frozenset[str] = frozenset(), **objects: list[dict[str, object]]) -> object:
        return inputs(version, {"a": "b"} if previous is None else previous,
                      config_maps=objects.get("config_maps", config_maps),
                      deployments=objects.get("deployments", deployments),
                      services=objects.get("services", services), unreachable=unreachable)
    assert key() == key() and key() is not None
    assert key(version="6") != key()
    assert key(unreachable=frozenset({"payment"})) != key()
    assert key(services=services[:-1]) != key()
    bumped = [{**d, "metadata": {**d["metadata"], "resourceVersion": "999"}} for d in deployments]
    assert key(deployments=bumped) != key()
    # Nothing to tell by: no key, so never taken as up to date.
    assert key(version=None) is None
    assert key(version=None, previous={}) is not None  # no record at all: nothing on record to change
    unversioned = [{**d, "metadata": {k: v for k, v in d["metadata"].items() if k != "resourceVersion"}}
                   for d in deployments]
    assert key(deployments=unversioned) is None


def test_a_finding_holds_only_for_its_inputs_and_not_before_it_was_made() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    up = UpToDate()
    up.found("a", ("k",), at)
    assert up.holds("a", ("k",), at + dt.timedelta(seconds=5))
    assert not up.holds("a", ("other",), at)
    assert not up.holds("b", ("k",), at)
    assert not up.holds("a", None, at)
    assert not up.holds("a", ("k",), at - dt.timedelta(seconds=1))  # the clock went back
    up.found("a", None, at)
    assert not up.holds("a", ("k",), at)
