"""Helm charts, container image and scripts, checked without a cluster: helm lint and template,
values schemas, the gateway config equal to the local run's, hadolint and shellcheck.
(Server-side validation of the rendered manifests is in tests/cluster/test_charts_dryrun.py.)"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from localkube.binaries import find_binary
from shop.gateway import render_config

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ["shop", "observability", "sre-operator", "llm"]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(find_binary("helm")), *args], capture_output=True, text=True, cwd=ROOT, check=False)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def render(chart: str, *values: str) -> list[dict]:
    out = helm("template", "rel", f"charts/{chart}", "--namespace", "ns", *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("chart", CHARTS)
def test_helm_lint_strict(chart: str) -> None:
    out = helm("lint", "--strict", f"charts/{chart}")
    assert "0 chart(s) failed" in out.stdout


def test_shop_renders_services_with_probes_limits_storage_and_scrape_annotations() -> None:
    docs = render("shop")
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"order", "product", "payment", "gateway", "loadgen"}
    # The load generator idles until a real-overload scenario scales it, and is not part of the shop.
    assert deployments["loadgen"]["spec"]["replicas"] == 0
    assert "app.kubernetes.io/part-of" not in deployments["loadgen"]["metadata"]["labels"]
    product_env = {
        e["name"]: e["value"]
        for e in deployments["product"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert (product_env["SHOP_DB_POOL_SIZE"], product_env["SHOP_DB_QUERY_MS"]) == ("2", "40")
    assert set(by_kind(docs, "PersistentVolumeClaim")) == {"order-data", "product-data", "payment-data"}
    for name, port in (("order", 5001), ("product", 5002), ("payment", 5003)):
        pod = deployments[name]["spec"]["template"]
        c = pod["spec"]["containers"][0]
        assert c["image"] == f"sre-operator/shop-{name}:0.1.0"
        assert c["ports"] == [{"name": "http", "containerPort": port}]
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert {"name": "SHOP_DB_PATH", "value": f"/data/{name}.db"} in c["env"]
    order_env = {
        e["name"]: e["value"]
        for e in deployments["order"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert order_env["SHOP_PAYMENT_URL"] == "http://payment:5003"
    gw = by_kind(docs, "Service")["gateway"]["spec"]
    assert gw["type"] == "NodePort" and gw["ports"][0]["nodePort"] == 30080


def test_every_shop_container_that_serves_is_ready_seconds_after_it_listens() -> None:
    """A rollout (a fault's, or the fix's) is as slow as its new pod's first passing readiness
    probe: each serving container has a startup probe every second, after which readiness
    is probed at once; without it the first probe fails (nothing listens yet) and the next comes a
    whole period (5-10 s) later, which the time to mitigate pays twice."""
    for name, dep in by_kind(render("shop"), "Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            if "readinessProbe" not in c:
                continue
            startup = c.get("startupProbe")
            assert startup, (name, c["name"])
            assert startup["periodSeconds"] == 1 and startup["periodSeconds"] * startup["failureThreshold"] >= 30, \
                (name, c["name"], startup)


def test_gateway_configmap_is_the_local_runs_config() -> None:
    cm = by_kind(render("shop"), "ConfigMap")["gateway-config"]
    expected = render_config(listen="8080", order="order:5001", product="product:5002",
                             access_log="/var/log/gateway/access.json", run_dir="/tmp")
    assert cm["data"]["nginx.conf"].strip() == expected.strip()


def test_gateway_config_is_valid_for_nginx(tmp_path: Path) -> None:
    conf = by_kind(render("shop"), "ConfigMap")["gateway-config"]["data"]["nginx.conf"]
    # Same config, pointed at local names so `nginx -t` can resolve the upstreams here.
    conf = conf.replace("order:5001", "127.0.0.1:5001").replace("product:5002", "127.0.0.1:5002")
    conf = conf.replace("payment:5003", "127.0.0.1:5003").replace("/var/log/gateway/", f"{tmp_path}/")
    conf = conf.replace("/tmp/nginx", f"{tmp_path}/nginx")
    (tmp_path / "nginx.conf").write_text(conf)
    out = subprocess.run(["/usr/sbin/nginx", "-t", "-e", "/dev/stderr", "-p", str(tmp_path), "-c",
                          str(tmp_path / "nginx.conf")], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_changing_the_gateway_config_rolls_the_gateway() -> None:
    before = by_kind(render("shop"), "Deployment")["gateway"]["spec"]["template"]["metadata"]["annotations"]
    after = by_kind(render("shop", "--set", "services.order.port=6001"), "Deployment")["gateway"]
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != before["checksum/config"]


def test_non_default_values() -> None:
    docs = render("shop", "--set", "persistence.enabled=false", "--set", "faultHooks=true",
                  "--set", "image.registry=registry.example:5000/", "--set", "otlpEndpoint=http://jaeger.obs:4318",
                  "--set", "gateway.exporter.enabled=false", "--set", "gateway.service.type=ClusterIP")
    assert by_kind(docs, "PersistentVolumeClaim") == {}
    product = by_kind(docs, "Deployment")["product"]["spec"]["template"]["spec"]
    assert product["volumes"][0] == {"name": "data", "emptyDir": {}}
    c = product["containers"][0]
    assert c["image"] == "registry.example:5000/sre-operator/shop-product:0.1.0"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SHOP_FAULT_HOOKS"] == "true" and env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger.obs:4318"
    gw = by_kind(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]
    assert [c["name"] for c in gw["containers"]] == ["nginx"]
    assert "nodePort" not in by_kind(docs, "Service")["gateway"]["spec"]["ports"][0]


@pytest.mark.parametrize(("chart", "value", "message"), [
    ("shop", "services.order.replicas=-1", "minimum"),
    ("shop", "gateway.service.nodePort=80", "minimum"),
    ("shop", "persistence.size=lots", "pattern"),
    ("shop", "unknownKey=1", "additional properties"),
    ("observability", "prometheus.scrapeInterval=often", "pattern"),
    ("observability", "jaeger.service.type=Magic", "value must be one of"),
    ("sre-operator", "mode=yolo", "value must be one of"),
    ("sre-operator", "watchNamespaces={Bad_NS}", "pattern"),
    ("sre-operator", "metricsPort=80", "anyOf"),
])
def test_bad_values_are_rejected_by_the_schema(chart: str, value: str, message: str) -> None:
    out = helm("template", "rel", f"charts/{chart}", "--set", value, check=False)
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_observability_prometheus_discovers_annotated_pods_and_kubelet_cadvisor() -> None:
    docs = render("observability")
    config = yaml.safe_load(by_kind(docs, "ConfigMap")["prometheus-config"]["data"]["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["kubernetes-pods"]["kubernetes_sd_configs"] == [{"role": "pod"}]
    keep = jobs["kubernetes-pods"]["relabel_configs"][0]
    assert (
        keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
        and keep["action"] == "keep"
    )
    assert jobs["kubernetes-cadvisor"]["relabel_configs"][1]["replacement"] == "/api/v1/nodes/$1/proxy/metrics/cadvisor"
    rules = by_kind(docs, "ClusterRole")["ns-prometheus"]["rules"]
    assert {"apiGroups": [""], "resources": ["nodes/proxy", "nodes/metrics"], "verbs": ["get"]} in rules
    assert set(by_kind(docs, "Deployment")) == {"prometheus", "jaeger"}
    args = by_kind(docs, "Deployment")["prometheus"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(a.startswith(("--web.enable-lifecycle", "--web.enable-admin-api")) for a in args), args
    # Detection latency: the SLO signals every second, a new pod's target within a second (not Prometheus's
    # 5 s batching of discovery updates); the resource figures less often.
    assert config["global"]["scrape_interval"] == "1s" and "--scrape.discovery-reload-interval=1s" in args
    cadvisor = jobs["kubernetes-cadvisor"]
    assert cadvisor["scrape_interval"] == "10s" and cadvisor["scrape_timeout"] == "8s"
    assert "cadvisor" in by_kind(docs, "DaemonSet")
    assert by_kind(render("observability", "--set", "cadvisor.enabled=false"), "DaemonSet") == {}


def test_the_operator_chart_keeps_a_replica_through_a_drain_and_labels_by_convention() -> None:
    docs = render("sre-operator")
    pdb = by_kind(docs, "PodDisruptionBudget")["rel"]
    dep = by_kind(docs, "Deployment")["rel"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "operator" and labels["app.kubernetes.io/version"] == "0.1.0"
    assert "app.kubernetes.io/version" not in dep["spec"]["selector"]["matchLabels"]  # a selector never changes
    assert by_kind(render("sre-operator", "--set", "replicas=1"), "PodDisruptionBudget") == {}


def test_the_operator_chart_notes_say_what_it_watches_and_how_to_upgrade_crds() -> None:
    out = helm("install", "rel", "charts/sre-operator", "--dry-run=client", "--namespace", "ns",
               "--set", "watchNamespaces={shop-a}", "--set", "mode=approve").stdout
    notes = out.split("NOTES:", 1)[1]
    assert "shop-a" in notes and "sre-operator approve" in notes and "sre.stratus.dev/approve=attempt-" in notes
    assert "kubectl apply --server-side --force-conflicts -f charts/sre-operator/crds/" in notes


@pytest.mark.parametrize("dockerfile", ["services/Dockerfile", "operator/Dockerfile"])
def test_dockerfile_is_hadolint_clean(dockerfile: str) -> None:
    out = subprocess.run(
        [str(ROOT / ".venv/bin/hadolint"), dockerfile], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = (ROOT / dockerfile).read_text()
    assert "USER 10001" in text and "slim" in text


def test_the_operator_chart_is_least_privilege_with_probes_and_settings() -> None:
    docs = render("sre-operator", "--set", "watchNamespaces={shop-a,shop-b}", "--set", "mode=approve",
                  "--set", "llm.existingSecret=llm-key")
    roles = [d for d in docs if d["kind"] == "Role" and not d["metadata"]["name"].endswith(("-leader", "-dashboard"))]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["shop-a", "shop-b"]
    # In its own namespace, only the Lease of the leader election.
    # The dashboard: read-only, in the namespace it shows (the first watched one).
    [dash] = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-dashboard")]
    assert dash["metadata"]["namespace"] == "shop-a"
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in dash["rules"])
    dash_dep = by_kind(docs, "Deployment")["rel-dashboard"]["spec"]
    assert dash_dep["template"]["spec"]["serviceAccountName"] == "rel-dashboard"
    assert dash_dep["template"]["spec"]["containers"][0]["args"] == ["dashboard"]
    assert dash_dep["selector"]["matchLabels"]["app.kubernetes.io/name"] == "sre-dashboard"  # not the operator's pods
    assert by_kind(docs, "Service")["rel-dashboard"]["spec"]["ports"][0]["nodePort"] == 30888
    [leader] = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader")]
    assert "namespace" not in leader["metadata"]  # the release's
    assert leader["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                "verbs": ["get", "create", "update"]}]
    for r in roles:
        for rule in r["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            assert "secrets" not in rule["resources"]
            # Exactly the verbs the allowlist needs (create/delete: `recreate` and its undo only).
            if rule["resources"] == ["deployments"]:
                assert set(rule["verbs"]) == {"get", "list", "watch", "patch", "create", "delete"}
            if rule["resources"] == ["services"]:
                assert set(rule["verbs"]) == {"get", "list", "patch", "create", "delete"}
            if rule["resources"] == ["pods"]:
                assert set(rule["verbs"]) == {"get", "list", "watch", "delete"}
    # The pod proxy: POST (create) and DELETE (delete) on the fault hooks, in the watched namespaces only.
    for r in roles:
        proxy = [rule for rule in r["rules"] if "pods/proxy" in rule["resources"]]
        assert proxy == [{"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["create", "delete"]}]
    elsewhere = [d for d in docs if d["kind"] in ("Role", "ClusterRole") and d not in roles]
    assert not [rule for d in elsewhere for rule in d["rules"] if any("proxy" in x for x in rule["resources"])]
    [cluster_role] = [d for d in docs if d["kind"] == "ClusterRole"]
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in cluster_role["rules"])
    dep = by_kind(docs, "Deployment")["rel"]["spec"]["template"]["spec"]
    ctr = dep["containers"][0]
    assert ctr["args"][:3] == ["run", "--namespace=shop-a", "--namespace=shop-b"] and "--leader-election" in ctr["args"]
    assert by_kind(docs, "Deployment")["rel"]["spec"]["replicas"] == 2
    assert "strategy" not in by_kind(docs, "Deployment")["rel"]["spec"]  # rolling: a standby takes over
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz" and ctr["readinessProbe"]
    env = {e["name"]: e for e in ctr["env"]}
    assert env["SRE_OPERATOR_WATCH_NAMESPACES"]["value"] == "shop-a,shop-b"
    assert env["SRE_OPERATOR_MODE"]["value"] == "approve"
    assert env["SRE_OPERATOR_LLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-key", "key": "api-key"}
    assert "SRE_OPERATOR_LLM_API_KEY" not in {e["name"] for e in
                                              by_kind(render("sre-operator"), "Deployment")["rel"]["spec"]["template"]
                                              ["spec"]["containers"][0]["env"]}
    assert dep["securityContext"]["runAsNonRoot"] and ctr["securityContext"]["readOnlyRootFilesystem"]


def test_cluster_wide_reads_for_the_detector_are_list_only_and_opt_in() -> None:
    assert not [d for d in render("sre-operator") if d["metadata"]["name"].endswith("-detector")]
    docs = render("sre-operator", "--set", "detection.clusterWideReads=true", "--set", "pipeline.incidentWorkers=32")
    role = by_kind(docs, "ClusterRole")["rel-ns-detector"]
    assert {r for rule in role["rules"] for r in rule["resources"]} == {
        "deployments", "pods", "services", "configmaps", "incidents"}
    assert all(rule["verbs"] == ["list"] for rule in role["rules"])
    binding = by_kind(docs, "ClusterRoleBinding")["rel-ns-detector"]
    assert binding["roleRef"]["name"] == "rel-ns-detector" and binding["subjects"][0]["name"] == "rel"
    env = {e["name"]: e.get("value") for e in
           by_kind(docs, "Deployment")["rel"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SRE_OPERATOR_INCIDENT_WORKERS"] == "32"


def test_the_operator_s_metrics_are_scraped_by_the_observability_prometheus() -> None:
    """Every replica carries the annotations the observability chart's pod job keeps, names the port
    and tells the operator which port to serve; metricsPort=0 turns all of it off."""
    dep = by_kind(render("sre-operator"), "Deployment")["rel"]["spec"]["template"]
    annotations = dep["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9464",
                           "prometheus.io/path": "/metrics"}
    ctr = dep["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9464} in ctr["ports"]
    assert {"name": "SRE_OPERATOR_METRICS_PORT", "value": "9464"} in ctr["env"]
    # The observability chart's Prometheus keeps exactly these pods, at that port and path.
    prometheus = by_kind(render("observability"), "ConfigMap")["prometheus-config"]
    config = yaml.safe_load(prometheus["data"]["prometheus.yml"])
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods"]
    sources = {r["source_labels"][-1]: r for r in job["relabel_configs"]}
    keep = sources["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep" and keep["regex"] == annotations["prometheus.io/scrape"]
    assert sources["__meta_kubernetes_pod_annotation_prometheus_io_path"]["target_label"] == "__metrics_path__"
    assert sources["__meta_kubernetes_pod_annotation_prometheus_io_port"]["target_label"] == "__address__"
    off = by_kind(render("sre-operator", "--set", "metricsPort=0"), "Deployment")["rel"]["spec"]["template"]
    assert "annotations" not in off["metadata"]
    assert [p["name"] for p in off["spec"]["containers"][0]["ports"]] == ["health"]
    assert {"name": "SRE_OPERATOR_METRICS_PORT", "value": "0"} in off["spec"]["containers"][0]["env"]


def test_the_operator_chart_ships_the_project_s_crds() -> None:
    ours = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_text() for p in (ROOT / "charts/sre-operator/crds").glob("*.yaml")}
    assert shipped == ours, "copy crds/*.yaml into charts/sre-operator/crds/"


def test_scripts_are_shellcheck_clean() -> None:
    scripts = [str(p) for p in (ROOT / "scripts").glob("*.sh")] + [str(ROOT / ".ci/run")]
    out = subprocess.run([str(ROOT / ".venv/bin/shellcheck"), *scripts], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout


def test_kind_config_maps_the_published_ports() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    maps = {m["hostPort"]: m["containerPort"] for m in config["nodes"][0]["extraPortMappings"]}
    assert maps == {80: 30080, 8888: 30888, 9090: 30090, 16686: 30686}


def test_every_shop_pod_takes_the_scheduling_values() -> None:
    docs = render(
        "shop",
        "--set-json",
        'nodeSelector={"type":"kwok"}',
        "--set-json",
        'tolerations=[{"key":"k","operator":"Exists","effect":"NoSchedule"}]',
        "--set",
        "traffic.enabled=true",
    )
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"order", "product", "payment", "gateway", "loadgen", "traffic"}
    for d in deployments.values():
        spec = d["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"type": "kwok"}
        assert spec["tolerations"] == [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    assert all(
        "nodeSelector" not in d["spec"]["template"]["spec"]
        for d in by_kind(render("shop"), "Deployment").values()
    )


def test_jaeger_receives_spans_from_other_pods() -> None:
    """Jaeger v2's built-in defaults bind OTLP to 127.0.0.1: the chart must give it a config with
    every endpoint on 0.0.0.0, or no service's span ever arrives."""
    docs = render("observability")
    jaeger = by_kind(docs, "Deployment")["jaeger"]["spec"]["template"]["spec"]
    assert jaeger["containers"][0]["args"] == ["--config", "/etc/jaeger/config.yaml"]
    assert jaeger["volumes"] == [{"name": "config", "configMap": {"name": "jaeger-config"}}]
    config = yaml.safe_load(by_kind(docs, "ConfigMap")["jaeger-config"]["data"]["config.yaml"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318" and protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"


def test_the_operator_chart_reads_the_notification_sinks_from_a_secret() -> None:
    """The sinks' URLs (they carry tokens) come from a Secret, each key optional; the dashboard link,
    the finished Incidents' TTL and the log format are settings."""
    dep = by_kind(render("sre-operator", "--set", "notifications.existingSecret=notify",
                         "--set", "notifications.dashboardUrl=https://sre.example", "--set", "finishedTtlSeconds=3600",
                         "--set", "logFormat=json"), "Deployment")["rel"]["spec"]["template"]["spec"]
    ctr = dep["containers"][0]
    env = {e["name"]: e for e in ctr["env"]}
    assert env["SRE_OPERATOR_NOTIFY_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "notify", "key": "webhook-url", "optional": True}
    assert env["SRE_OPERATOR_NOTIFY_SLACK_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "notify", "key": "slack-webhook-url", "optional": True}
    assert env["SRE_OPERATOR_DASHBOARD_URL"]["value"] == "https://sre.example"
    assert env["SRE_OPERATOR_FINISHED_TTL_SECONDS"]["value"] == "3600"
    assert "--log-format=json" in ctr["args"]
    default = by_kind(render("sre-operator"), "Deployment")["rel"]["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in default["env"]}
    assert not {"SRE_OPERATOR_NOTIFY_WEBHOOK_URL", "SRE_OPERATOR_NOTIFY_SLACK_URL"} & names
    assert "--log-format=full" in default["args"]
    # Every name the chart sets is a setting the operator reads.
    from sre_operator.settings import Settings
    known = {f"SRE_OPERATOR_{name.upper()}" for name in Settings.model_fields}
    assert {n for n in env if n.startswith("SRE_OPERATOR_")} - known == {"SRE_OPERATOR_LEASE_SECONDS"}


def alert_rules(*values: str) -> dict:
    config = by_kind(render("observability", *values), "ConfigMap")["prometheus-config"]["data"]
    assert yaml.safe_load(config["prometheus.yml"])["rule_files"] == ["/etc/prometheus/alerts.yml"]
    return yaml.safe_load(config["alerts.yml"])


def test_the_observability_chart_ships_alert_rules_promtool_accepts_on_metrics_the_operator_exports(
        tmp_path: Path) -> None:
    """The rules parse (Debian's promtool checks their PromQL) and read only metric names the
    operator's telemetry really exports; each alert of issue 20 is there. That one fires on the
    triggering figures is tests/services/test_alert_rules.py."""
    import re

    from prometheus_client import generate_latest

    from sre_operator.adapters.telemetry import PrometheusTelemetry
    rules = alert_rules("--set", "prometheus.alerts.awaitingApprovalMinutes=30")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    out = subprocess.run(["/usr/bin/promtool", "check", "rules", str(tmp_path / "alerts.yml")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(by_name) == {"SreOperatorIncidentEscalated", "SreOperatorAwaitingApproval",
                            "SreOperatorDetectorFallingBehind", "SreOperatorDetectorStalled", "SreOperatorNoLeader",
                            "SreOperatorMetricsSourceDown"}
    assert by_name["SreOperatorAwaitingApproval"]["expr"].endswith("> 1800")
    t = PrometheusTelemetry()
    t.detector_cycle(1.0, 1)
    t.metrics_source(True)
    exported = set(re.findall(r"^(sre_operator_\w+)", generate_latest(t.registry).decode(), re.MULTILINE))
    used = {m for r in by_name.values() for m in re.findall(r"sre_operator_\w+", r["expr"])}
    assert used and used <= exported, used - exported
    off = by_kind(render("observability", "--set", "prometheus.alerts.enabled=false"), "ConfigMap")
    assert "alerts.yml" not in off["prometheus-config"]["data"]
    assert "rule_files" not in yaml.safe_load(off["prometheus-config"]["data"]["prometheus.yml"])


def _cpu_millis(q: str) -> float:
    return float(q[:-1]) if q.endswith("m") else float(q) * 1000


def test_llm_serves_the_openai_api_below_the_shops_cpu_with_the_model_read_only() -> None:
    docs = render("llm", "--set", "model.hostPath=/cache/qwen")
    dep = by_kind(docs, "Deployment")["llm"]
    assert by_kind(docs, "Service")["llm"]["spec"]["ports"][0]["port"] == 8080
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "ghcr.io/ggml-org/llama.cpp:server"
    args = c["args"]
    for flag, value in (("--model", "/models/model.gguf"), ("--ctx-size", "8192"), ("--parallel", "1"),
                        ("--threads", "2"), ("--alias", "local")):
        assert args[args.index(flag) + 1] == value
    assert "--jinja" in args
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert {"name": "model", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
    # The node's directory through a read-only PV bound to this claim only (a pod hostPath breaks baseline).
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "llm-model", "readOnly": True}} in pod["volumes"]
    assert "fsGroup" not in pod["securityContext"]  # the model's directory is never re-owned
    pv = by_kind(docs, "PersistentVolume")["ns-llm-model"]["spec"]
    assert pv["hostPath"] == {"path": "/cache/qwen", "type": "Directory"} and pv["accessModes"] == ["ReadOnlyMany"]
    assert pv["claimRef"] == {"namespace": "ns", "name": "llm-model"}
    assert by_kind(docs, "PersistentVolumeClaim")["llm-model"]["spec"]["volumeName"] == "ns-llm-model"
    # Its CPU weight and limit are below the shop's: each shop pod's request, all shop pods' limits.
    shop = [d["spec"]["template"]["spec"]["containers"] for d in by_kind(render("shop"), "Deployment").values()
            if d["metadata"]["name"] != "loadgen"]
    shop_requests = [sum(_cpu_millis(x["resources"]["requests"]["cpu"]) for x in cs) for cs in shop]
    shop_limit = sum(_cpu_millis(x["resources"]["limits"]["cpu"]) for cs in shop for x in cs)
    assert _cpu_millis(c["resources"]["requests"]["cpu"]) < min(shop_requests)
    assert _cpu_millis(c["resources"]["limits"]["cpu"]) < shop_limit


def test_llm_on_kind_downloads_the_model_or_mounts_a_claim() -> None:
    c = by_kind(render("llm", "--set", "model.url=https://models.example/q.gguf"), "Deployment")["llm"]
    args = c["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--model-url") + 1] == "https://models.example/q.gguf"
    assert "--model" not in args
    pod = by_kind(render("llm", "--set", "model.claimName=models", "--set", "model.file=m.gguf"),
                  "Deployment")["llm"]["spec"]["template"]["spec"]
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod["volumes"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "/models/m.gguf"


@pytest.mark.parametrize("values", [[], ["--set", "model.hostPath=/m", "--set", "model.url=https://x/m.gguf"]])
def test_llm_needs_exactly_one_model_source(values: list[str]) -> None:
    out = helm("template", "rel", "charts/llm", *values, check=False)
    assert out.returncode != 0
    assert "set exactly one of model.hostPath, model.claimName and model.url" in out.stderr


def test_the_confirming_reading_waits_for_a_new_scrape_and_the_operator_defaults_to_the_charts() -> None:
    """A breach is confirmed by a reading of new data: at least one Prometheus scrape later. The
    operator run outside the chart (bench, `make run`) defaults to the chart's values."""
    from sre_operator.domain.clock import parse_duration
    from sre_operator.settings import Settings
    scrape = parse_duration(yaml.safe_load((ROOT / "charts/observability/values.yaml").read_text())
                            ["prometheus"]["scrapeInterval"])
    detection = yaml.safe_load((ROOT / "charts/sre-operator/values.yaml").read_text())["detection"]
    assert detection["confirmSeconds"] >= scrape
    defaults = Settings()
    assert defaults.confirm_seconds == detection["confirmSeconds"]
    assert defaults.detect_interval_seconds == detection["intervalSeconds"]


def test_every_rate_window_holds_enough_scrapes_of_what_it_reads() -> None:
    """The requests' rate window is short, so a fault shows within seconds (its bad requests must pass
    a share of the window), yet holds ten scrapes of the pods at least; CPU throttling, read from
    cAdvisor scraped far less often, keeps a window of three of its scrapes (a rate needs two samples);
    a pod is new while the window still mixes in its predecessor's requests."""
    from sre_operator.adapters.prometheus import THROTTLE_WINDOW
    from sre_operator.domain.clock import parse_duration
    from sre_operator.domain.metrics import WINDOW
    from sre_operator.domain.policy import Thresholds
    scrape = parse_duration(yaml.safe_load((ROOT / "charts/observability/values.yaml").read_text())
                            ["prometheus"]["scrapeInterval"])
    jobs = yaml.safe_load(next(d for d in render("observability") if d["kind"] == "ConfigMap"
                               and "prometheus.yml" in d.get("data", {}))["data"]["prometheus.yml"])
    cadvisor = next(j for j in jobs["scrape_configs"] if "cadvisor" in j["job_name"])
    assert 10 * scrape <= parse_duration(WINDOW) <= 15
    assert parse_duration(THROTTLE_WINDOW) >= 3 * parse_duration(cadvisor["scrape_interval"])
    assert Thresholds().fresh_pod_seconds == parse_duration(WINDOW)
