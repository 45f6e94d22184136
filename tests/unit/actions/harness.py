"""What the action tests share: the shop in the in-memory cluster with its known-good record taken
while healthy, one reading of it, and the round trip of a prepared action (apply it as the
pipeline does, see it took effect, undo it from its record)."""
from __future__ import annotations

from typing import Any

from shop.gateway import render_config  # the shop's own template (services/ is on the path)
from sre_operator import actions
from sre_operator.actions import Prepared
from sre_operator.detection import known_good
from sre_operator.detection.signals import service_problem
from sre_operator.domain.models import Action
from sre_operator.domain.ports import Obj
from sre_operator.domain.snapshot import KNOWN_GOOD, Snapshot
from tests.fakes.cluster import MemoryCluster, shop

NS = "shop"
GOOD_CONFIG = render_config(listen="8080", order="order:5001", product="product:5002",
                            access_log="/var/log/gateway/access.json")


def healthy_shop() -> MemoryCluster:
    """The shop with the gateway's real config, its known-good record taken a while later."""
    cluster = shop(MemoryCluster())
    cluster.patch("ConfigMap", NS, "gateway-config", "merge", {"data": {"nginx.conf": GOOD_CONFIG}})
    cluster.tick(600)
    remember(cluster)
    return cluster


def remember(cluster: MemoryCluster) -> dict[str, str]:
    """What the detector does on a healthy cycle, through the production rule."""
    previous = dict((cluster.get("ConfigMap", NS, KNOWN_GOOD) or {}).get("data") or {})
    pods = cluster.list_objects("Pod", NS)
    services = cluster.list_objects("Service", NS, {"app.kubernetes.io/part-of": "shop"})
    data = known_good.remember(previous, config_maps=cluster.list_objects("ConfigMap", NS,
                                                                          {"app.kubernetes.io/part-of": "shop"}),
                               deployments=cluster.list_objects("Deployment", NS,
                                                                {"app.kubernetes.io/part-of": "shop"}),
                               services=services,
                               unreachable={s["metadata"]["name"] for s in services if service_problem(s, pods)},
                               now=cluster.clock())
    if cluster.get("ConfigMap", NS, KNOWN_GOOD) is None:
        cluster.create("ConfigMap", NS, {"metadata": {"name": KNOWN_GOOD}, "data": data})
    else:
        cluster.patch("ConfigMap", NS, KNOWN_GOOD, "merge", {"data": data})
    return data


def read(cluster: MemoryCluster) -> Snapshot:
    return Snapshot.read(cluster, NS, cluster.clock())


def act(type_: str, kind: str, name: str, **fields: Any) -> Action:
    namespace = fields.pop("namespace", None)
    return Action.model_validate({"type": type_, "target": {"kind": kind, "name": name, "namespace": namespace},
                                  **fields})


def apply(cluster: MemoryCluster, p: Prepared) -> None:
    """A prepared write, done through the port (as the pipeline does)."""
    if p.verb == "delete":
        cluster.delete(p.kind, p.namespace, p.name)
    elif p.verb == "create":
        cluster.create(p.kind, p.namespace, p.body)
    else:
        cluster.patch(p.kind, p.namespace, p.name, p.patch_type or "merge", p.body)
    cluster.controllers()


def record_of(action: Action, p: Prepared) -> dict[str, Any]:
    """The applied action's record, as the Incident's status keeps it."""
    return {"type": action.type, "target": {"kind": action.target.kind, "namespace": NS, "name": action.target.name},
            "undo": p.undo}


def round_trip(cluster: MemoryCluster, action: Action) -> tuple[Obj | None, Obj | None, Obj | None]:
    """Prepare `action` against a reading of `cluster`, check it has not taken effect, apply it,
    check it has, undo it from its record. The target before, after, and after the undo."""
    p = actions.prepare(action, read(cluster))
    intent = actions.intent_of(p)
    kind, name = action.target.kind, action.target.name
    before = cluster.get(kind, NS, name)
    assert not actions.took_effect(intent, before)
    apply(cluster, p)
    after = cluster.get(kind, NS, name)
    assert actions.took_effect(intent, after)
    reverse = actions.undo_of(record_of(action, p))
    assert reverse is not None
    apply(cluster, reverse)
    return before, after, cluster.get(kind, NS, name)
