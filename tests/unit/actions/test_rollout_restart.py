"""rollout-restart: a new restartedAt on the template (from the reading's time, not the wall
clock); nothing to undo."""
from __future__ import annotations

from sre_operator import actions
from sre_operator.actions import RESTARTED_AT

from .harness import act, apply, healthy_shop, read, record_of


def test_a_restart_stamps_the_template_with_the_reading_s_time_and_has_no_undo() -> None:
    cluster = healthy_shop()
    action = act("rollout-restart", "Deployment", "payment")
    snap = read(cluster)
    p = actions.prepare(action, snap)
    assert p.body == {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-01-01T12:10:00Z"}}}}}
    intent = actions.intent_of(p)
    assert not actions.took_effect(intent, cluster.get("Deployment", "shop", "payment"))
    pods = {x["metadata"]["name"] for x in cluster.list_objects("Pod", "shop", {"app.kubernetes.io/name": "payment"})}
    apply(cluster, p)
    assert actions.took_effect(intent, cluster.get("Deployment", "shop", "payment"))
    new = {x["metadata"]["name"] for x in cluster.list_objects("Pod", "shop", {"app.kubernetes.io/name": "payment"})}
    assert new and not new & pods  # fresh pods
    assert p.undo == {} and actions.undo_of(record_of(action, p)) is None
