"""The kopf handlers only delegate: called as kopf calls them, with the Kubernetes adapter swapped
for the in-memory cluster, they write what `faults.reconcile` returns and turn API errors into
kopf's retry (transient) or give-up (permanent)."""
from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

from sre_operator.handlers import faultscenarios as handlers
from tests.fakes.cluster import MemoryCluster, shop

LOG = logging.getLogger("test")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> MemoryCluster:
    c = shop(MemoryCluster())
    monkeypatch.setattr(handlers, "Kube", lambda: c)
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(kopf, "info", lambda body, reason, message: events.append(("info", reason)))
    monkeypatch.setattr(kopf, "warn", lambda body, reason, message: events.append(("warn", reason)))
    c.events = events  # type: ignore[attr-defined]
    return c


def body(c: MemoryCluster, spec: dict[str, Any]) -> dict[str, Any]:
    c.create("FaultScenario", "shop", {"metadata": {"name": "fs"}, "spec": spec})
    return c.objects[("FaultScenario", "shop", "fs")]


def test_inject_then_delete(cluster: MemoryCluster) -> None:
    fs = body(cluster, {"type": "scale-to-zero", "target": {"name": "product"}, "duration": "1s"})
    patch = kopf.Patch()
    handlers.inject(body=fs, patch=patch, logger=LOG)
    assert patch["status"]["phase"] == "Injected"
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 0
    cluster.patch_status("FaultScenario", "shop", "fs", dict(patch["status"]))
    handlers.revert_on_delete(body=fs, logger=LOG)
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 1
    assert cluster.events == [("info", "Injected")]  # type: ignore[attr-defined]


def test_an_invalid_scenario_is_failed_with_a_warning(cluster: MemoryCluster) -> None:
    fs = body(cluster, {"type": "scale-to-zero", "target": {"name": "nothing"}})
    patch = kopf.Patch()
    handlers.inject(body=fs, patch=patch, logger=LOG)
    assert patch["status"]["phase"] == "Failed"
    assert cluster.events == [("warn", "InvalidScenario")]  # type: ignore[attr-defined]


def injected(cluster: MemoryCluster) -> dict[str, Any]:
    fs = body(cluster, {"type": "scale-to-zero", "target": {"name": "product"}, "duration": "1s"})
    patch = kopf.Patch()
    handlers.inject(body=fs, patch=patch, logger=LOG)
    fs["status"] = {**patch["status"], "revertAt": "2000-01-01T00:00:00Z"}
    return fs


def test_the_timer_reverts_when_due(cluster: MemoryCluster) -> None:
    fs = injected(cluster)
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 0
    patch = kopf.Patch()
    handlers.revert_when_due(body=fs, patch=patch, logger=LOG)
    assert patch["status"]["phase"] == "Reverted"
    assert cluster.objects[("Deployment", "shop", "product")]["spec"]["replicas"] == 1


@pytest.mark.parametrize("forge", [
    pytest.param({"snapshot": {"replicas": 30}}, id="snapshot"),
    pytest.param({"name": "order"}, id="other-object"),
    pytest.param({"namespace": "kube-system", "name": "coredns"}, id="other-namespace"),
    pytest.param({"seal": None}, id="unsealed"),
])
def test_a_forged_target_record_is_not_written_back(cluster: MemoryCluster, forge: dict[str, Any]) -> None:
    """Whoever may write `faultscenarios/status` rewrites a target record: nothing of it is written
    back (its object stays as it is), the record is Failed and the timer warns why."""
    fs = injected(cluster)
    fs["status"]["targets"][0].update(forge)
    writes = len(cluster.writes)
    patch = kopf.Patch()
    handlers.revert_when_due(body=fs, patch=patch, logger=LOG)
    assert [w for w in cluster.writes[writes:] if w[1] != "FaultScenario"] == []
    assert patch["status"]["reason"] == "RecordTampered" and "not as the injector wrote them" in \
        patch["status"]["message"]
    assert patch["status"]["targets"][0]["phase"] == "Failed"
    assert ("warn", "RecordTampered") in cluster.events  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "error"), [(503, kopf.TemporaryError), (403, kopf.PermanentError)])
def test_api_errors_become_kopf_retries_or_give_ups(cluster: MemoryCluster, status: int,
                                                    error: type[Exception]) -> None:
    fs = body(cluster, {"type": "scale-to-zero", "target": {"name": "product"}})
    cluster.fail_next(1, status)
    with pytest.raises(error):
        handlers.inject(body=fs, patch=kopf.Patch(), logger=LOG)


def test_a_resumed_injection_does_not_write_a_forged_pending_record(cluster: MemoryCluster) -> None:
    """A scenario whose status already holds a Pending record (as after a crash mid-injection) that
    the injector did not write: nothing is injected from it, nothing reverted, the scenario Failed."""
    fs = body(cluster, {"type": "scale-to-zero", "target": {"name": "product"}, "duration": "1m"})
    fs["status"] = {"phase": "Pending", "targets": [{"kind": "Deployment", "namespace": "shop", "name": "order",
                                                     "phase": "Pending", "snapshot": {"replicas": 40}}]}
    writes = len(cluster.writes)
    patch = kopf.Patch()
    handlers.inject(body=fs, patch=patch, logger=LOG)
    assert [w for w in cluster.writes[writes:] if w[1] != "FaultScenario"] == []
    assert patch["status"]["phase"] == "Failed" and patch["status"]["reason"] == "RecordTampered"
    assert ("warn", "RecordTampered") in cluster.events  # type: ignore[attr-defined]
