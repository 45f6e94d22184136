"""Traces as triage evidence: the real services export over OTLP to a real Jaeger (v2, built from
its Go module); the operator's trace reader finds the failing trace of an order whose payment is
down, names the failed span's service, and ranks failing traces before slow ones."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localkube.binaries import find_binary
from shop import procs
from sre_operator.adapters.traces import TraceReader

from .conftest import Shop, wait_for


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[tuple[str, str]]:
    proc, query, otlp = procs.jaeger(str(find_binary("jaeger")), tmp_path / "jaeger")
    proc.start()
    try:
        proc.wait_healthy(60)
        yield query, otlp
    finally:
        proc.stop()


def test_the_failing_trace_of_an_order_names_the_dead_dependency(make_shop: Callable[..., Shop],
                                                                   jaeger: tuple[str, str]) -> None:
    query, otlp = jaeger
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    shop = make_shop(order=env, product=env, payment=env)
    for name in ("product", "payment", "order"):
        shop.start(name)
    assert shop.order().status_code == 201  # one good order: a trace through all three
    shop.stop("payment")
    failed = shop.order(product_id="P002")
    assert failed.status_code >= 400
    reader = TraceReader(query)

    def two_traces() -> list | None:  # complete: each with its server span (exported last) as root
        found = reader.evidence("order", limit=5)
        return found if len(found) >= 2 and all(f.root == "order: POST /api/orders" for f in found) else None
    facts = wait_for(two_traces, timeout=30, interval=0.5, what="both orders' complete traces in Jaeger")
    first, second = facts[0], facts[1]
    payment = f"127.0.0.1:{shop.ports['payment']}"
    # The failing one ranks first and names the call that failed: order → payment's address.
    assert first.failed_spans and any(f"→ {payment}" in s and "ConnectError" in s for s in first.failed_spans), first
    assert not second.failed_spans and second.spans > first.spans and second.duration_ms > 0
    assert second.slowest_span.startswith("order: ") and " ms" in second.slowest_span
    # A trace store that does not answer is missing evidence, not an error.
    assert TraceReader("http://127.0.0.1:9", timeout=1).evidence("order") == []


def test_the_operator_s_spans_of_an_incident_reach_jaeger_as_one_trace(jaeger: tuple[str, str]) -> None:
    """The operator's own OTLP adapter (`adapters/spans.py`) exports to the same Jaeger: the
    Incident's span and its phases' spans, found in Jaeger under the trace id of the Incident's uid."""
    import httpx

    from sre_operator.adapters.spans import OtlpSpans
    from sre_operator.domain.tracing import Ref

    query, otlp = jaeger
    spans = OtlpSpans(otlp)
    ref = Ref("0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "shop", "inc-payment")
    spans.phase(ref, "Triaging", 1_700_000_000, 1_700_000_002, {"sre.incident.service": "payment"})
    spans.model_call(ref, "gpt-test", 1_700_000_002, 1_700_000_003, {"gen_ai.operation.name": "chat"})
    spans.incident(ref, 1_700_000_000, 1_700_000_060, {"sre.incident.phase": "Resolved"})
    assert spans.flush()

    def trace() -> dict | None:
        r = httpx.get(f"{query}/api/traces/0b1c2d3e4f5046178293a4b5c6d7e8f9", timeout=5)
        data = r.json().get("data") if r.status_code == 200 else None
        return data[0] if data and len(data[0]["spans"]) == 3 else None
    found = wait_for(trace, timeout=30, interval=0.5, what="the Incident's trace in Jaeger")
    by_name = {s["operationName"]: s for s in found["spans"]}
    assert set(by_name) == {"incident shop/inc-payment", "Triaging", "chat gpt-test"}
    root = by_name["incident shop/inc-payment"]
    assert not root["references"] and root["duration"] == 60_000_000
    for child in ("Triaging", "chat gpt-test"):
        assert by_name[child]["references"][0]["spanID"] == root["spanID"]
    assert {p["serviceName"] for p in found["processes"].values()} == {"sre-operator"}
