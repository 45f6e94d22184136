"""The operator chart on the local cluster: `helm install charts/sre-operator` runs the operator
as a pod under its own service account, Ready through kopf's /healthz; its RBAC lets it do exactly
the allowlisted actions in the namespaces it watches and nothing elsewhere; and from inside the
cluster it handles a FaultScenario (inject, then revert after the duration) and an Incident."""
from __future__ import annotations

import json
import re
import uuid

from localkube.cluster import Cluster, ClusterError
from localkube.testing import helm_install, shop_namespace, wait_for


def test_the_operator_chart_runs_the_operator_in_cluster_with_least_privilege(cluster: Cluster,
                                                                              crds: Cluster) -> None:
    with shop_namespace(cluster) as shop:
        ns = f"sre-{uuid.uuid4().hex[:6]}"
        cluster.kubectl("create", "namespace", ns)
        try:
            try:
                # dry-run: the detector's own incidents plan and never act, so the manual one below is
                # judged on the state the test makes, not on what another incident already fixed.
                helm_install(cluster, "sre-operator", "sre-operator", ns, f"watchNamespaces={{{shop}}}",
                             f"prometheusUrl=http://prometheus.{shop}:9090", "detection.intervalSeconds=2",
                             "mode=dry-run", timeout="90s")
            except ClusterError as exc:
                pods = cluster.kubectl("describe", "pods", "-n", ns, check=False).stdout
                logs = cluster.kubectl("logs", "-n", ns, "deployment/sre-operator", "--tail=60", check=False)
                raise AssertionError(f"{exc}\n{pods[-3000:]}\n{logs.stdout}{logs.stderr}") from exc
            pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
            operators = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/name"] == "sre-operator"]
            assert len(operators) == 2  # a leader and a standby
            for pod in pods:  # /healthz answered: the leader's kopf, the standby's own, the dashboard's
                assert all(c["ready"] for c in pod["status"]["containerStatuses"]), pod["metadata"]["name"]
            holder = wait_for(lambda: json.loads(cluster.kubectl(
                "get", "lease", "sre-operator-leader", "-n", ns, "-o", "json", check=False).stdout or "{}").get(
                "spec", {}).get("holderIdentity"), 60, "a leader")
            assert any(holder.startswith(f"sre-operator@{p['metadata']['name']}/") for p in operators), holder
            # The dashboard, through the API server's service proxy: it reads the shop, and may only read.
            state = json.loads(cluster.kubectl(
                "get", "--raw", f"/api/v1/namespaces/{ns}/services/sre-operator-dashboard:8888/proxy/api/state").stdout)
            assert state["namespace"] == shop
            assert [n["name"] for n in state["health"]["nodes"]] == ["gateway", "order", "product", "payment"]
            dash = f"system:serviceaccount:{ns}:sre-operator-dashboard"
            for verb, res, want in (("watch", "incidents", "yes"), ("list", "events", "yes"),
                                    ("patch", "deployments", "no"), ("create", "incidents", "no"),
                                    ("get", "secrets", "no")):
                got = cluster.kubectl("auth", "can-i", verb, res, "-n", shop, "--as", dash, check=False).stdout.strip()
                assert got == want, (verb, res, got)

            sa = f"system:serviceaccount:{ns}:sre-operator"

            def can(*args: str) -> str:
                return cluster.kubectl("auth", "can-i", *args, "--as", sa, check=False).stdout.strip()
            assert can("patch", "deployments", "-n", shop) == "yes"
            assert can("patch", "configmaps", "-n", shop) == "yes"
            assert can("delete", "pods", "-n", shop) == "yes"
            assert can("patch", "services", "-n", shop) == "yes"  # restore-service
            # recreate (a Deployment or Service deleted since it was healthy) and its undo, in watched namespaces only
            assert can("create", "services", "-n", shop) == "yes" and can("delete", "deployments", "-n", shop) == "yes"
            assert can("create", "deployments", "-n", "kube-system") == "no"
            assert can("patch", "deployments", "-n", "kube-system") == "no"
            assert can("get", "secrets", "-n", shop) == "no"
            assert can("create", "pods", "-n", shop) == "no" and can("delete", "secrets", "-n", shop) == "no"
            assert can("list", "namespaces") == "yes" and can("delete", "namespaces") == "no"

            cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\n"
                          f"metadata: {{name: crash, namespace: {shop}}}\n"
                          f"spec: {{type: payment-crash, target: {{name: payment}}, duration: 15s}}\n")

            def phase(kind: str, name: str) -> str:
                return cluster.kubectl("get", kind, name, "-n", shop, "-o", "jsonpath={.status.phase}",
                                       check=False).stdout
            wait_for(lambda: phase("faultscenario", "crash") == "Injected", 60, "the in-cluster operator to inject")
            wait_for(lambda: phase("faultscenario", "crash") == "Reverted", 90, "the revert after 15s")

            # A manual Incident is acted on only when the cluster bears it out: product really is at 0.
            cluster.kubectl("scale", "deployment", "product", "-n", shop, "--replicas=0")
            cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: Incident\n"
                          f"metadata: {{name: manual, namespace: {shop}}}\n"
                          f"spec: {{service: product, symptom: unavailable, mode: dry-run}}\n")
            wait_for(lambda: phase("incident", "manual") == "DryRun", 90, "the pipeline to plan in dry-run")
            st = json.loads(cluster.kubectl("get", "incident", "manual", "-n", shop, "-o", "json").stdout)["status"]
            assert [a["type"] for a in st["plan"]["actions"]] == ["scale"] and st["diagnosis"]["planner"] == "rules"
            # Both replicas' logs (the leader's detector and pipeline, the standby's lease), but the
            # detector's one documented probe: without detection.clusterWideReads, listing every
            # namespace is refused and it reads each watched namespace on its own.
            both = cluster.kubectl("logs", "-n", ns, "-l", "app.kubernetes.io/name=sre-operator", "--tail=-1",
                                   "--prefix").stdout
            logs = "\n".join(line for line in both.splitlines() if "not allowed to list every namespace" not in line)
            # A refusal as the API server, the client or kopf words it; a bare "403" would also match the
            # milliseconds of a log timestamp ("06:41:27,403").
            refused = re.search(r'Forbidden|\(403\)|" 403 |status[=: ]+403\b', logs)
            assert refused is None, logs[max(0, refused.start() - 1500):refused.end() + 1500]
        finally:
            cluster.helm("uninstall", "sre-operator", "-n", ns, "--wait", check=False)
            cluster.kubectl("delete", "namespace", ns, "--timeout=120s", check=False)
