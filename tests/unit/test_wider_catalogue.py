"""Detection and planning for the wider fault catalogue, from evidence alone: a Service that
reaches no pod, a gateway route that no location serves, a saturated pool, OOM kills after a
rollout (the restore-service action itself: tests/unit/actions/test_restore_service.py)."""
from __future__ import annotations

from sre_operator.detection.detector import Detector, ServiceSignals, breaches
from sre_operator.detection.known_good import service_spec
from sre_operator.detection.signals import service_problem
from sre_operator.domain.models import Evidence, ServiceFacts, Symptom, WorkloadFacts
from sre_operator.planning import rules as planner


def healthy(service: str, **kw: object) -> ServiceSignals:
    base: dict = {"error_ratio": 0.0, "p95_seconds": 0.03, "request_rate": 5, "scrape_up": True, "desired": 1,
                  "ready": 1, "restarts": 0}
    return ServiceSignals(service, **{**base, **kw})


def pod(name: str, labels: dict, ports: list[dict] | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports if ports is not None else
                                     [{"name": "http", "containerPort": 5003}]}]}}


def svc(selector: dict, target: object = "http") -> dict:
    return {"metadata": {"name": "payment", "labels": {"app.kubernetes.io/name": "payment"}},
            "spec": {"selector": selector, "clusterIP": "10.96.0.5",
                     "ports": [{"name": "http", "port": 5003, "targetPort": target, "protocol": "TCP"}]}}


LABELS = {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/name": "payment"}


def test_a_service_that_reaches_no_pod_says_why() -> None:
    pods = [pod("payment-1", {**LABELS, "pod-template-hash": "x"})]
    assert service_problem(svc(LABELS), pods) is None
    assert service_problem(svc(LABELS, 5003), pods) is None  # a number a container declares
    broken = service_problem(svc({**LABELS, "app.kubernetes.io/name": "payment-v2"}), pods)
    assert broken and "selects no pod" in broken and "payment-v2" in broken
    # No payment pod at all (scaled to 0): nothing the Service could reach, so no Service problem.
    assert service_problem(svc({**LABELS, "app.kubernetes.io/name": "payment-v2"}), []) is None
    port = service_problem(svc(LABELS, 5999), pods)
    assert port and "targets 5999" in port
    # Pods that declare no port: a numeric target may be right, so no claim is made.
    assert service_problem(svc(LABELS, 5999), [pod("p", LABELS, ports=[])]) is None
    assert service_problem({"metadata": {"name": "x"}, "spec": {"ports": []}}, pods) is None  # no selector
    assert service_spec(svc(LABELS))["ports"] == [{"name": "http", "port": 5003, "targetPort": "http",
                                                   "protocol": "TCP"}]


def test_missing_endpoints_open_one_incident_about_the_service_not_its_callers() -> None:
    signals = [healthy("payment", request_rate=0.0, endpoints_problem="Service payment selects no pod"),
               healthy("order", error_ratio=0.8), healthy("gateway", error_ratio=0.4), healthy("product")]
    found = [(b.service, b.symptom) for b in breaches(signals)]
    assert found == [("payment", "endpoints-missing")]
    det = Detector()
    det.observe(signals, now=0)
    assert [(b.service, b.symptom) for b in det.observe(signals, now=10)] == [("payment", "endpoints-missing")]


def test_a_route_no_location_serves_is_the_gateways_incident() -> None:
    gw = healthy("gateway", unrouted_ratio=1.0, unrouted_route="/api/products")
    [b] = breaches([gw, healthy("product"), healthy("order")])
    assert (b.service, b.symptom) == ("gateway", "route-missing") and "/api/products" in b.signal
    # A few 404s (a customer's typo) are not a missing route; nor is anything without traffic.
    assert breaches([healthy("gateway", unrouted_ratio=0.05, unrouted_route="/api/products")]) == []
    assert breaches([healthy("gateway", request_rate=0.0, unrouted_ratio=1.0, unrouted_route="/api/orders")]) == []


def test_one_gateway_route_failing_whole_is_an_error_rate_the_overall_ratio_hides() -> None:
    # Orders are a sixth of the gateway's requests: all of them failing is 17 % overall, an outage
    # the overall ratio shows late (or, below the threshold, never); the route's own ratio shows it.
    gw = healthy("gateway", error_ratio=0.08, route_error_ratio=1.0, route_error_route="/api/orders", route_rate=0.5)
    [b] = breaches([gw, healthy("order"), healthy("product")])
    assert (b.service, b.symptom) == ("gateway", "error-rate") and "/api/orders" in b.signal and b.value == 1.0
    # A route with next to no traffic, or a few errors on it, is not one.
    assert breaches([healthy("gateway", route_error_ratio=1.0, route_error_route="/api/orders", route_rate=0.01)]) == []
    assert breaches([healthy("gateway", route_error_ratio=0.05, route_error_route="/api/orders", route_rate=0.5)]) == []
    # The service behind the route failing is the root: the gateway's route errors fold into it.
    found = breaches([gw, healthy("order", error_ratio=1.0), healthy("product")])
    assert [(x.service, x.symptom) for x in found] == [("order", "error-rate")]


def test_the_gateways_worst_route_is_read_from_its_own_5xx_rate() -> None:
    from sre_operator.adapters.prometheus import _gateway
    raw = {"gw_rate": {("shop", ""): 3.0}, "gw_errors": {("shop", ""): 0.5}, "gw_p95": {},
           "gw_route_rate": {("shop", "/api/products"): 2.5, ("shop", "/api/orders"): 0.5, ("other", "/api/orders"): 1},
           "gw_route_errors": {("shop", "/api/orders"): 0.5, ("other", "/api/orders"): 0.1}, "unrouted": {}}
    out = {"shop": {"gateway": {}}}
    _gateway(raw, out)
    gw = out["shop"]["gateway"]
    assert gw["error_ratio"] == 0.5 / 3.0
    assert (gw["route_error_ratio"], gw["route_rate"], gw["route_error_route"]) == (1.0, 0.5, "/api/orders")


def test_a_saturated_pool_is_a_symptom_only_with_queries_waiting() -> None:
    hot = healthy("product", p95_seconds=0.9, saturation=0.99, waiting=12.0)
    assert {b.symptom for b in breaches([hot])} == {"latency", "saturation"}
    busy_but_keeping_up = healthy("product", saturation=0.95, waiting=0.1)
    assert breaches([busy_but_keeping_up]) == []


def wl(**kw: object) -> WorkloadFacts:
    base = {"service": "product", "deployment": "product", "desired": 1, "ready": 1, "revision": 2,
            "previousRevision": 1, "rolledOutSecondsAgo": 7200, "rolloutChanged": True}
    return WorkloadFacts.model_validate({**base, **kw})


def sym(kind: str, service: str = "product", signal: str = "") -> Symptom:
    return Symptom(kind=kind, service=service, signal=signal or f"{kind} of {service}")


def test_saturation_without_a_recent_change_doubles_the_replicas() -> None:
    ev = Evidence(symptoms=[sym("latency"), sym("saturation", signal="product database connections 99% busy")],
                  workloads=[wl()])
    p = planner.plan(ev)
    assert [(a.type, a.target.name, a.replicas) for a in p.actions] == [("scale", "product", 2)]
    assert "99% busy" in p.root_cause and p.confidence > 0.6
    # Slow with no saturation and nothing changed: a restart first (a process gone bad); then more capacity.
    busy = Evidence(symptoms=[sym("latency")], workloads=[wl(desired=6, ready=6)])
    assert planner.plan(busy).actions[0].type == "rollout-restart"
    assert planner.plan(busy, {"rollout-restart:Deployment/product"}).actions[0].replicas == 10
    # The same latency right after a rollout is the rollout's fault: rolled back, not scaled.
    recent = Evidence(symptoms=[sym("latency"), sym("saturation")], workloads=[wl(rolledOutSecondsAgo=60)])
    assert planner.plan(recent).actions[0].type == "rollback"


def test_oom_kills_after_a_rollout_roll_back_and_without_one_restart() -> None:
    after = Evidence(symptoms=[sym("oom")], workloads=[wl(oomKilled=True, restarts=3, rolledOutSecondsAgo=90)])
    a = planner.plan(after).actions[0]
    assert (a.type, a.revision) == ("rollback", 1)
    old = Evidence(symptoms=[sym("oom")], workloads=[wl(oomKilled=True, restarts=3)])
    assert planner.plan(old).actions[0].type == "rollout-restart"


def test_a_changed_service_that_reaches_no_pod_is_restored() -> None:
    broken = ServiceFacts(name="payment", selector={"app.kubernetes.io/name": "payment-v2"}, targetPorts=["http"],
                          problem="Service payment selects no pod", differsFromKnownGood=True,
                          knownGoodSelector={"app.kubernetes.io/name": "payment"})
    ev = Evidence(symptoms=[sym("endpoints-missing", "payment")],
                  workloads=[wl(service="payment", deployment="payment")], services=[broken])
    [a] = planner.plan(ev).actions
    assert (a.type, a.target.kind, a.target.name) == ("restore-service", "Service", "payment")
    # Without a healthy version on record there is nothing to restore to: no guess.
    unknown = broken.model_copy(update={"differs_from_known_good": False})
    p = planner.plan(ev.model_copy(update={"services": [unknown]}))
    assert all(x.type != "restore-service" for x in p.actions)


def test_a_deleted_deployment_or_service_on_the_affected_path_is_recreated() -> None:
    from sre_operator.domain.models import Target
    gone = [Target(kind="Service", name="payment"), Target(kind="Deployment", name="payment")]
    ev = Evidence(symptoms=[sym("error-rate", "order")], workloads=[wl(service="order", deployment="order")],
                  missing=gone)
    p = planner.plan(ev)
    assert [(a.type, a.target.kind, a.target.name) for a in p.actions] == [
        ("recreate", "Service", "payment"), ("recreate", "Deployment", "payment")]
    assert p.root_cause == "the Service and Deployment of payment were deleted; order depends on payment"
    # Not on the path of the affected service (payment sends no request to order): not this incident's fix.
    other = Evidence(symptoms=[sym("error-rate", "payment")], workloads=[wl(service="payment", deployment="payment")],
                     missing=[Target(kind="Deployment", name="order")])
    assert all(a.type != "recreate" for a in planner.plan(other).actions)
    # A deleted ConfigMap is not recreated by this rule (its readers say more), nor is a plan tried before.
    assert planner.plan(ev, tried=planner.action_keys(p)).actions != p.actions
    cm = Evidence(symptoms=[sym("error-rate", "gateway")], missing=[Target(kind="ConfigMap", name="gateway-config")])
    assert planner.plan(cm).actions == []
    # One its readers on the path need is: back from its copy, its readers rolled (the benchmark's
    # gateway-config-deleted: before, the gateway was only restarted, and stayed unable to start).
    read = cm.model_copy(update={"workloads": [wl(service="gateway", deployment="gateway",
                                                  configMaps=["gateway-config"])]})
    assert [(a.type, a.target.kind, a.target.name) for a in planner.plan(read).actions] == [
        ("recreate", "ConfigMap", "gateway-config"), ("rollout-restart", "Deployment", "gateway")]


def test_a_reading_names_the_objects_on_record_that_are_gone() -> None:
    from sre_operator.domain.snapshot import Snapshot
    from tests.unit.actions.harness import healthy_shop, read
    cluster = healthy_shop()
    assert read(cluster).missing() == []
    cluster.delete("Service", "shop", "payment")
    cluster.delete("ConfigMap", "shop", "gateway-config")
    snap = read(cluster)
    assert snap.missing() == [("ConfigMap", "gateway-config"), ("Service", "payment")]
    assert snap.missing(("Deployment", "Service")) == [("Service", "payment")]
    assert Snapshot("shop", snap.taken_at, known_good={"_object.Service": "{}"}).missing() == []


def test_a_pod_held_back_by_its_cpu_limit_is_a_symptom() -> None:
    from sre_operator.domain.policy import Thresholds
    throttled = healthy("product", cpu_throttled=0.6)
    [b] = breaches([throttled])
    assert (b.service, b.symptom, b.value) == ("product", "cpu-throttled", 0.6) and "60%" in b.signal
    # Below kube-prometheus's 25 %, or not measured (no cAdvisor, pods too new): nothing.
    assert breaches([healthy("product", cpu_throttled=0.2)]) == []
    assert breaches([healthy("product", cpu_throttled=None)]) == []
    # A rollout under way is a change being made, not yet a state to judge.
    assert breaches([healthy("product", cpu_throttled=0.9, rolling_out=True)]) == []
    assert breaches([healthy("product", cpu_throttled=0.3)], Thresholds(cpu_throttled_ratio=0.5)) == []
    # It needs a second reading, like every figure from the metrics source.
    d = Detector()
    assert d.observe([throttled], now=0) == [] and [x.symptom for x in d.observe([throttled], now=5)] == [
        "cpu-throttled"]


def test_the_cpu_throttling_reading_is_folded_per_service() -> None:
    from sre_operator.adapters.prometheus import _capacity_and_business, _queries
    raw = {"pool_busy": {}, "pool_waiting": {}, "orders": {}, "orders_failed": {},
           "cpu_throttled": {("shop", "product"): 1.004, ("shop", "payment"): 0.0, ("other", "product"): 0.9}}
    out: dict = {"shop": {"gateway": {}}}
    _capacity_and_business(raw, out)
    assert out["shop"]["product"]["cpu_throttled"] == 1.0 and out["shop"]["payment"]["cpu_throttled"] == 0.0
    assert "other" not in out
    q = _queries('namespace="shop"', "30s")["cpu_throttled"]
    assert "container_cpu_cfs_throttled_periods_total" in q and "container_start_time_seconds" in q


def test_a_lowered_cpu_limit_is_rolled_back_and_throttling_with_nothing_changed_scales_out() -> None:
    throttled = sym("cpu-throttled", signal="product held back by its CPU limit in 80% of the periods it ran")
    # The template changed since it was last seen healthy (resources.limits.cpu): back to that revision.
    edited = Evidence(symptoms=[throttled], workloads=[wl(rolledOutSecondsAgo=60, healthyRevision=1,
                                                          healthyCopy=True)])
    a = planner.plan(edited).actions[0]
    assert (a.type, a.revision) == ("rollback", 1)
    # No copy on record, but a recent rollout brought it: the previous revision.
    recent = Evidence(symptoms=[throttled], workloads=[wl(rolledOutSecondsAgo=60)])
    assert planner.plan(recent).actions[0].type == "rollback"
    # Nothing changed: the load grew past what its limit allows; more replicas share it (an HPA's answer).
    grown = Evidence(symptoms=[throttled], workloads=[wl()])
    p = planner.plan(grown)
    assert [(x.type, x.replicas) for x in p.actions] == [("scale", 2)] and "80% of the periods" in p.root_cause


def test_a_caller_slowed_by_a_changed_dependency_rolls_the_dependency_back_never_scales_itself() -> None:
    from sre_operator.domain.models import ChangeFacts
    edit = ChangeFacts(kind="Deployment", name="product", field="spec.template.spec.containers[product].resources",
                       before="limits.cpu=500m", after="limits.cpu=20m")
    order = wl(service="order", deployment="order")
    product = wl(healthyRevision=3, healthyCopy=True)
    ev = Evidence(symptoms=[sym("latency", service="order")], workloads=[order, product], changes=[edit])
    p = planner.plan(ev)
    assert [(a.type, a.target.name, a.revision) for a in p.actions] == [("rollback", "product", 3)]
    assert "product" in p.root_cause and "changed since it was last seen healthy" in p.root_cause
    # With nothing changed on its path, the same slowness of order is its own (a restart, then more replicas).
    alone = Evidence(symptoms=[sym("latency", service="order")], workloads=[order, wl()])
    assert planner.plan(alone).actions[0].target.name == "order"
    # Tried already: the caller is still not scaled for its dependency's change.
    assert planner.plan(ev, {"rollback:Deployment/product"}).actions == []
