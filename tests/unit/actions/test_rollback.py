"""rollback: the template of an earlier revision the Deployment still has, replaced whole; undo
puts the bad template back."""
from __future__ import annotations

import pytest

from sre_operator import actions
from sre_operator.actions import ActionRefused
from tests.fakes.cluster import MemoryCluster

from .harness import act, healthy_shop, read, round_trip


def bad_rollout(cluster: MemoryCluster) -> None:
    """Revision 2 of payment adds an env var (a strategic merge back would keep it)."""
    cluster.patch("Deployment", "shop", "payment", "json", [
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "BAD", "value": "1"}}])
    cluster.controllers()


def test_rollback_round_trip() -> None:
    cluster = healthy_shop()
    bad_rollout(cluster)
    before, after, undone = round_trip(cluster, act("rollback", "Deployment", "payment", revision=1))
    assert before and after and undone
    env = [c["env"] for c in after["spec"]["template"]["spec"]["containers"]]
    assert env == [[]]  # replaced whole: the bad revision's variable is gone
    assert "pod-template-hash" not in after["spec"]["template"]["metadata"]["labels"]
    assert actions.revision_of(after) == 3  # the controller's new revision of the old template
    assert undone["spec"]["template"] == before["spec"]["template"]


def test_a_rollback_away_from_a_revision_that_added_a_field_is_applied_not_taken_as_done() -> None:
    # Seen on the benchmark (`unschedulable`): the bad revision added a nodeSelector; its template
    # held every field of the good one, so the recorded rollback was taken as already applied and
    # never written, and the Incident waited for a rollout that nothing had started.
    cluster = healthy_shop()
    cluster.patch("Deployment", "shop", "payment", "json", [
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": {"disktype": "nvme"}}])
    cluster.controllers()
    before, after, _ = round_trip(cluster, act("rollback", "Deployment", "payment", revision=1))
    assert before and "nodeSelector" in before["spec"]["template"]["spec"]
    assert after and "nodeSelector" not in after["spec"]["template"]["spec"]


@pytest.mark.parametrize(("revision", "reason"), [(9, "has no revision 9"), (2, "already runs revision 2")])
def test_rollback_to_a_revision_it_lacks_or_runs_is_refused(revision: int, reason: str) -> None:
    cluster = healthy_shop()
    bad_rollout(cluster)
    with pytest.raises(ActionRefused, match=reason):
        actions.prepare(act("rollback", "Deployment", "payment", revision=revision), read(cluster))
    with pytest.raises(ActionRefused, match="needs revision"):
        actions.check(act("rollback", "Deployment", "payment"), "shop")
