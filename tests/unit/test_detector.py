"""Detection from signals: thresholds, persistence, dedup, cooldown, correlation, and no alarm for
quiet services or a rollout in progress."""
from __future__ import annotations

from sre_operator.detection.detector import Detector, ServiceSignals, breaches
from sre_operator.domain.policy import Thresholds


def healthy(service: str) -> ServiceSignals:
    return ServiceSignals(service, error_ratio=0.0, p95_seconds=0.03, request_rate=5, scrape_up=True, desired=1,
                          ready=1, restarts=0)


def test_healthy_quiet_and_rolling_services_raise_nothing() -> None:
    quiet = ServiceSignals("product", error_ratio=1.0, p95_seconds=5, request_rate=0.0, desired=1, ready=1)
    rolling = ServiceSignals("order", desired=1, ready=0, rolling_out=True, scrape_up=False)
    assert breaches([healthy("payment"), quiet, rolling]) == []


def test_each_symptom_is_seen() -> None:
    found = {(b.service, b.symptom) for b in breaches([
        ServiceSignals("product", p95_seconds=0.9, request_rate=3, desired=1, ready=1),
        ServiceSignals("gateway", crash_looping=True, restarts=5)])}
    assert found == {("product", "latency"), ("gateway", "crash-loop")}
    assert [(b.service, b.symptom) for b in breaches([
        ServiceSignals("order", error_ratio=0.3, request_rate=3, desired=1, ready=1), healthy("product")])] == [
        ("order", "error-rate")]
    assert [(b.service, b.symptom) for b in breaches([ServiceSignals("payment", desired=1, ready=0)])] == [
        ("payment", "unavailable")]


def test_the_gateways_errors_fold_into_the_broken_service() -> None:
    found = breaches([ServiceSignals("gateway", error_ratio=0.5, request_rate=5, desired=1, ready=1),
                      ServiceSignals("order", error_ratio=0.5, request_rate=5, desired=1, ready=1),
                      ServiceSignals("payment", desired=1, ready=0)])
    assert [(b.service, b.symptom) for b in found] == [("payment", "unavailable")]


def test_persistence_dedup_and_cooldown() -> None:
    d = Detector(Thresholds(for_cycles=2, cooldown_seconds=60))
    down = [ServiceSignals("payment", desired=1, ready=0)]
    assert d.observe(down, now=0) == []  # one bad reading is not an incident
    [b] = d.observe(down, now=1)
    assert b.key == "payment/unavailable"
    d.opened(b.key)
    assert d.observe(down, now=2) == []  # already open
    d.closed(b.key, now=3)
    assert d.observe(down, now=10) == []  # cooling down
    assert d.observe([healthy("payment")], now=70) == []  # recovered: the streak restarts
    assert d.observe(down, now=71) == []
    assert [x.key for x in d.observe(down, now=72)] == ["payment/unavailable"]


def test_callers_of_a_service_with_an_incident_do_not_open_their_own() -> None:
    d = Detector(Thresholds(for_cycles=1, cooldown_seconds=60))
    d.opened("payment/unavailable")
    order_errors = [ServiceSignals("order", error_ratio=0.7, request_rate=3, desired=1, ready=1), healthy("payment")]
    assert d.observe(order_errors, now=0) == []
    d.closed("payment/unavailable", now=1)
    assert d.observe(order_errors, now=30) == []  # the 1-minute ratio still shows the outage
    assert [b.key for b in d.observe(order_errors, now=100)] == ["order/error-rate"]


def test_a_slowdown_travels_up_and_only_the_deepest_service_opens_an_incident() -> None:
    slow = [ServiceSignals("gateway", p95_seconds=0.9, request_rate=5, desired=1, ready=1),
            ServiceSignals("order", p95_seconds=2.7, request_rate=2, desired=1, ready=1),
            ServiceSignals("product", p95_seconds=0.8, request_rate=4, desired=1, ready=1)]
    assert [(b.service, b.symptom) for b in breaches(slow)] == [("product", "latency")]


def test_one_incident_per_service_whatever_its_symptoms() -> None:
    """A broken gateway config gives 502s that are also slow: one incident (the most severe
    symptom), the other symptom is its evidence; a symptom that shows up later does not open a
    second incident while the first is open, nor within the cooldown after it."""
    d = Detector(Thresholds(for_cycles=1, cooldown_seconds=60))
    slow_only = [ServiceSignals("gateway", error_ratio=0.0, p95_seconds=1.4, request_rate=5, desired=1, ready=1)]
    both = [ServiceSignals("gateway", error_ratio=0.6, p95_seconds=1.4, request_rate=5, desired=1, ready=1)]
    assert [b.key for b in d.observe(both, now=0)] == ["gateway/error-rate"]
    d2 = Detector(Thresholds(for_cycles=1, cooldown_seconds=60))
    [first] = d2.observe(slow_only, now=0)
    d2.opened(first.key)
    assert d2.observe(both, now=5) == []  # the errors belong to the open latency incident
    d2.closed(first.key, now=10)
    assert d2.observe(both, now=40) == []  # another symptom of the same service, cooling down
    assert [b.key for b in d2.observe(both, now=80)] == ["gateway/error-rate"]


def test_a_caller_is_not_blamed_while_a_dependency_cannot_be_judged() -> None:
    """product's new pods (an overload just rolled out) have no figures yet while the gateway is
    already slow: the gateway's latency waits; once product's figures show, product is the root."""
    gateway = ServiceSignals("gateway", p95_seconds=0.9, request_rate=5, desired=1, ready=1)
    others = [healthy("order"), healthy("payment")]
    new_pods = ServiceSignals("product", desired=1, ready=1)  # no rate, no P95 yet
    assert breaches([gateway, new_pods, *others]) == []
    rolling = ServiceSignals("product", p95_seconds=0.02, request_rate=4, desired=1, ready=1, rolling_out=True)
    assert breaches([gateway, rolling, *others]) == []
    slow = ServiceSignals("product", p95_seconds=0.95, request_rate=4, desired=1, ready=1)
    assert [(b.service, b.symptom) for b in breaches([gateway, slow, *others])] == [("product", "latency")]
    # A broken gateway with steady dependencies is the gateway's own incident.
    assert [(b.service, b.symptom) for b in breaches([gateway, healthy("product"), *others])] == [
        ("gateway", "latency")]


def test_scaled_to_zero_and_stuck_pods_are_seen() -> None:
    found = {(b.service, b.symptom) for b in breaches([
        ServiceSignals("payment", desired=0, ready=0),
        ServiceSignals("order", desired=1, ready=1, rolling_out=True, stuck_pod_seconds=60, error_ratio=0.0,
                       request_rate=3),
        ServiceSignals("product", desired=1, ready=1, rolling_out=True, stuck_pod_seconds=10)])}
    assert found == {("payment", "unavailable"), ("order", "not-ready")}


def test_a_caller_is_not_blamed_while_its_dependency_s_pods_are_too_new_to_judge() -> None:
    """product was just replaced (overloaded): its 1-minute figures still mix the old, fast pod's
    requests, so its P95 looks fine while order is already slow. Order waits; 30 s on, product's
    own figures show and the incident is product's."""
    order = ServiceSignals("order", p95_seconds=1.2, request_rate=1, desired=1, ready=1)
    fresh = ServiceSignals("product", p95_seconds=0.2, request_rate=3, desired=1, ready=1, newest_pod_seconds=12)
    assert breaches([order, fresh, healthy("payment")]) == []
    settled = ServiceSignals("product", p95_seconds=0.9, request_rate=3, desired=1, ready=1, newest_pod_seconds=40)
    assert [(b.service, b.symptom) for b in breaches([order, settled, healthy("payment")])] == [
        ("product", "latency")]


def test_orders_failing_without_5xx_are_an_error_rate_of_the_business_outcome() -> None:
    quiet_5xx = ServiceSignals("order", error_ratio=0.0, p95_seconds=0.05, request_rate=2.0, desired=1, ready=1,
                               orders_rate=1.0, orders_failed_ratio=0.4)
    [b] = breaches([quiet_5xx])
    assert (b.service, b.symptom) == ("order", "error-rate") and "40% of orders failed" in b.signal
    assert breaches([ServiceSignals("order", request_rate=2.0, desired=1, ready=1, orders_rate=1.0,
                                    orders_failed_ratio=0.05)]) == []
    # A 5xx storm is one error-rate breach, not two.
    both = ServiceSignals("order", error_ratio=0.5, request_rate=2.0, desired=1, ready=1, orders_rate=1.0,
                          orders_failed_ratio=0.5)
    assert [b.symptom for b in breaches([both])] == ["error-rate"]


def test_a_conclusive_kubernetes_state_opens_at_the_first_reading_a_metric_breach_waits_for_a_second() -> None:
    """Scaled to 0, crash-looping (the kubelet has already restarted it), a pod that can never start,
    an object gone: waiting one more detection interval proves nothing. A 5xx ratio or a pod merely
    not Ready may be one bad reading."""
    for conclusive in (ServiceSignals("product", desired=0, ready=0),
                       ServiceSignals("payment", desired=1, ready=0, crash_looping=True, restarts=2),
                       ServiceSignals("order", desired=1, ready=0, rolling_out=True,
                                      never_starting="order-1: Unschedulable"),
                       ServiceSignals("payment", missing="Service payment was seen healthy and no longer exists")):
        d = Detector(Thresholds(for_cycles=2))
        assert [b.service for b in d.observe([conclusive], now=0)] == [conclusive.service], conclusive
    for passing in (ServiceSignals("order", error_ratio=0.5, request_rate=3, desired=1, ready=1),
                    ServiceSignals("payment", desired=1, ready=0)):
        d = Detector(Thresholds(for_cycles=2))
        assert d.observe([passing], now=0) == []
        assert [b.service for b in d.observe([passing], now=5)] == [passing.service]


def test_a_pod_that_took_long_to_start_is_as_new_as_its_time_serving() -> None:
    """A pod created a minute ago that became Ready five seconds ago (its CPU limit slowed its start)
    has served for five seconds: the rate window still holds its predecessor's requests, so its
    service cannot be judged yet and its callers' latency waits (it is not its callers' incident)."""
    import datetime as dt

    from sre_operator.detection.signals import workloads_of
    at = dt.datetime(2026, 11, 26, 15, 0, 0, tzinfo=dt.UTC)

    def iso(seconds_before: float) -> str:
        return (at - dt.timedelta(seconds=seconds_before)).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {"app.kubernetes.io/name": "product"}
    dep = {"metadata": {"name": "product", "labels": labels, "generation": 2},
           "spec": {"replicas": 1}, "status": {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 1,
                                                "readyReplicas": 1}}

    def pod(ready_before: float | None) -> dict:
        conditions = [] if ready_before is None else [
            {"type": "Ready", "status": "True", "lastTransitionTime": iso(ready_before)}]
        return {"metadata": {"name": "product-a", "labels": labels, "creationTimestamp": iso(60)},
                "spec": {"containers": []}, "status": {"conditions": conditions}}
    slow_start = workloads_of(([dep], [pod(5)], []), at)["product"]
    assert slow_start["newest_pod_seconds"] == 5
    assert workloads_of(([dep], [pod(None)], []), at)["product"]["newest_pod_seconds"] == 60
    order = ServiceSignals("order", p95_seconds=1.2, request_rate=1, desired=1, ready=1)
    product = ServiceSignals("product", p95_seconds=0.2, request_rate=3, desired=1, ready=1,
                             newest_pod_seconds=slow_start["newest_pod_seconds"])
    assert breaches([order, product, healthy("payment")]) == []
