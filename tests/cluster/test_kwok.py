"""Scale: kwok's fake nodes take a thousand pods, while the process node, kept apart by label and
taint, runs none of them."""
from __future__ import annotations

import json

from localkube import controlplane as cp
from localkube import kwok
from localkube.cluster import Cluster
from localkube.testing import wait_for


def test_a_thousand_pods_reach_running_on_kwok_nodes(cluster: Cluster, namespace: str) -> None:
    cluster.start_kwok()
    nodes = kwok.add_nodes(cluster, 5, prefix=f"kwok-{namespace[-5:]}", pods=250)
    try:
        def nodes_ready() -> bool:
            out = cluster.kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout
            items = [n for n in json.loads(out)["items"] if n["metadata"]["name"] in nodes]
            return len(items) == 5 and all(
                any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
                for n in items)
        wait_for(nodes_ready, 60, "the kwok nodes to be Ready")
        template = {"metadata": {"labels": {"app": "fleet"}},
                    "spec": {**kwok.ON_KWOK, "containers": [{"name": "app", "image": "registry.example/fleet:1"}]}}
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "fleet", "namespace": namespace},
                  "spec": {"replicas": 1000, "selector": {"matchLabels": {"app": "fleet"}}, "template": template}}
        cluster.apply(json.dumps(deploy))
        cluster.kubectl("rollout", "status", "-n", namespace, "deployment/fleet", "--timeout=600s", timeout=620)
        pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json", timeout=120).stdout)["items"]
        assert len(pods) == 1000
        assert all(p["status"]["phase"] == "Running" for p in pods)
        assert {p["spec"]["nodeName"] for p in pods} <= set(nodes)
        assert cp.NODE_NAME not in {p["spec"]["nodeName"] for p in pods}
        # Without the toleration nothing goes to the kwok nodes.
        untolerated = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "picky", "namespace": namespace},
                       "spec": {"nodeSelector": kwok.LABEL, "containers": [{"name": "c", "image": "busybox"}]}}
        cluster.apply(json.dumps(untolerated))
        wait_for(lambda: "Unschedulable" in cluster.kubectl(
            "get", "pod", "picky", "-n", namespace, "-o", "jsonpath={.status.conditions[*].reason}").stdout, 30,
            "the scheduler to refuse the pod")
    finally:
        cluster.kubectl("delete", "deployment", "fleet", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "node", *nodes, "--wait=false", check=False)
