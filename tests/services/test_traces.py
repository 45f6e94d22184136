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
