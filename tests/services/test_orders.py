"""The order saga against real product, payment and order processes."""
from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from .conftest import Shop, wait_for


def payments_for(shop: Shop, order_id: str) -> int:
    return int(httpx.get(f"{shop.url('payment')}/api/payments", params={"order_id": order_id}).json()["count"])


def test_order_reserves_charges_and_confirms(shop: Shop) -> None:
    before = shop.stock("P002")
    resp = shop.order("P002", qty=3)
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "confirmed"
    assert order["amount"] == pytest.approx(3 * 25.5)
    assert [s["step"] for s in order["steps"]] == ["reserve", "charge", "confirm"]
    assert shop.stock("P002") == before - 3
    payment = httpx.get(f"{shop.url('payment')}/api/payments/{order['payment_id']}").json()
    assert payment["status"] == "approved" and payment["order_id"] == order["id"]
    assert payments_for(shop, order["id"]) == 1
    fetched = httpx.get(f"{shop.url('order')}/api/orders/{order['id']}").json()
    assert fetched["status"] == "confirmed"
    listed = httpx.get(f"{shop.url('order')}/api/orders").json()
    assert order["id"] in [o["id"] for o in listed]


def test_declined_payment_releases_the_reservation(make_shop) -> None:
    shop = make_shop(payment={"SHOP_PAYMENT_MAX_AMOUNT": "100"})
    for name in ("product", "payment", "order"):
        shop.start(name)
    before = shop.stock("P003")
    resp = shop.order("P003", qty=1)  # 249.00 > 100: declined
    assert resp.status_code == 402, resp.text
    order = resp.json()
    assert order["status"] == "failed"
    assert "declined" in order["reason"]
    assert [(s["step"], s["outcome"]) for s in order["steps"]] == [
        ("reserve", "ok"), ("charge", "declined"), ("release", "ok")]
    assert shop.stock("P003") == before


def test_payment_down_compensates_and_records_the_failure(shop: Shop) -> None:
    before = shop.stock()
    shop.stop("payment")
    resp = shop.order()
    assert resp.status_code == 503, resp.text
    order = resp.json()
    assert order["status"] == "failed" and "payment unavailable" in order["reason"]
    assert order["steps"][-1] == {**order["steps"][-1], "step": "release", "outcome": "ok"}
    assert shop.stock() == before
    stored = httpx.get(f"{shop.url('order')}/api/orders/{order['id']}").json()
    assert stored["status"] == "failed"


def order_status(shop: Shop, order_id: str) -> str:
    return str(httpx.get(f"{shop.url('order')}/api/orders/{order_id}").json()["status"])


# Recovery runs often and soon in these tests, so they need not wait out the defaults.
RECOVERY = {"SHOP_RECOVERY_INTERVAL_S": "0.3", "SHOP_RECOVERY_GRACE_S": "0.5"}


def test_a_timed_out_charge_is_not_taken_as_not_charged(make_shop) -> None:
    """The charge's answer is lost (payment is slower than order's timeout) but the charge is made:
    the order must not release its stock and fail while the customer is charged. It waits, pending,
    until payment says, then confirms."""
    shop = make_shop(payment={"SHOP_FAULT_HOOKS": "true"},
                     order={"SHOP_HTTP_TIMEOUT_S": "0.3", "SHOP_HTTP_RETRIES": "0", **RECOVERY})
    for name in ("product", "payment", "order"):
        shop.start(name)
    httpx.post(f"{shop.url('payment')}/fault/latency", json={"ms": 1500}).raise_for_status()
    before = shop.stock()
    resp = shop.order()
    assert resp.status_code == 504, resp.text
    order = resp.json()
    assert order["status"] == "pending" and "timed out" in order["reason"] and "not known" in order["reason"]
    assert shop.stock() == before - 1  # still reserved: it may have been paid for
    wait_for(lambda: payments_for(shop, order["id"]) == 1, what="payment to make the slow charge")
    httpx.delete(f"{shop.url('payment')}/fault").raise_for_status()
    wait_for(lambda: order_status(shop, order["id"]) == "confirmed", what="the pending order to be confirmed")
    stored = httpx.get(f"{shop.url('order')}/api/orders/{order['id']}").json()
    assert payments_for(shop, order["id"]) == 1 and stored["payment_id"]
    assert any(s["step"] == "settle" and s["outcome"] == "charged" for s in stored["steps"])
    assert shop.stock() == before - 1


def _crash_order_mid_charge(shop: Shop) -> tuple[str, int]:
    """Place an order, and kill order (SIGKILL) while payment holds its charge. Returns the order id
    and the stock before."""
    httpx.post(f"{shop.url('payment')}/fault/latency", json={"ms": 2000}).raise_for_status()
    before = shop.stock()
    placing = threading.Thread(target=lambda: _ignore_errors(shop.order), daemon=True)
    placing.start()
    wait_for(lambda: shop.stock() == before - 1, what="the reservation")
    time.sleep(0.3)  # the charge is on its way, held by payment's latency
    shop.kill("order")
    placing.join(10)
    [order_id] = _pending_ids(shop)
    return order_id, before


def _ignore_errors(call) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call()


def _pending_ids(shop: Shop) -> list[str]:
    import sqlite3
    with sqlite3.connect(shop.data / "order.db") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM orders WHERE status = 'pending'")]


def test_an_order_a_crash_interrupted_after_the_charge_is_confirmed_on_start(make_shop) -> None:
    shop = make_shop(payment={"SHOP_FAULT_HOOKS": "true"}, order={"SHOP_HTTP_TIMEOUT_S": "10", **RECOVERY})
    for name in ("product", "payment", "order"):
        shop.start(name)
    order_id, before = _crash_order_mid_charge(shop)
    wait_for(lambda: payments_for(shop, order_id) == 1, what="payment to finish the charge")
    shop.start("order")
    wait_for(lambda: order_status(shop, order_id) == "confirmed", what="the interrupted order to be confirmed")
    assert shop.stock() == before - 1 and payments_for(shop, order_id) == 1


def test_an_order_a_crash_interrupted_before_the_charge_is_compensated_on_start(make_shop) -> None:
    shop = make_shop(payment={"SHOP_FAULT_HOOKS": "true"}, order={"SHOP_HTTP_TIMEOUT_S": "10", **RECOVERY})
    for name in ("product", "payment", "order"):
        shop.start(name)
    order_id, before = _crash_order_mid_charge(shop)
    shop.kill("payment")  # before its latency ran out: the charge was never made
    shop.start("payment")
    shop.start("order")
    wait_for(lambda: order_status(shop, order_id) == "failed", what="the interrupted order to be compensated")
    stored = httpx.get(f"{shop.url('order')}/api/orders/{order_id}").json()
    assert "interrupted" in stored["reason"] and shop.stock() == before
    assert payments_for(shop, order_id) == 0
    # The key is closed: a charge under it that arrived only now is refused, never made.
    resp = httpx.post(f"{shop.url('payment')}/api/payments", headers={"Idempotency-Key": f"order-{order_id}"},
                      json={"order_id": order_id, "amount": 1.0, "customer_name": "Demo User"})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "idempotency_key_closed"


def test_out_of_stock_is_a_409_and_charges_nothing(shop: Shop) -> None:
    resp = shop.order("P005", qty=999)
    assert resp.status_code == 409
    order = resp.json()
    assert order["status"] == "failed" and "left" in order["reason"]
    assert payments_for(shop, order["id"]) == 0


def test_a_product_below_its_restock_level_is_refilled_before_it_runs_out(make_shop) -> None:
    shop = make_shop(product={"SHOP_RESTOCK_BELOW": "30"})
    for name in ("product", "payment", "order"):
        shop.start(name)
    assert shop.order("P005", qty=25).status_code == 201  # 30 → 5
    assert shop.stock("P005") == 5
    assert shop.order("P005", qty=10).status_code == 201  # 5 < 30: refilled to 30, then 10 taken
    assert shop.stock("P005") == 20
    assert shop.order("P005", qty=999).status_code == 409  # more than a delivery brings


def test_without_restocking_the_stock_runs_out_and_the_business_metric_says_why(make_shop) -> None:
    shop = make_shop(product={"SHOP_RESTOCK_BELOW": "0"})
    for name in ("product", "payment", "order"):
        shop.start(name)
    assert shop.order("P005", qty=25).status_code == 201
    assert shop.order("P005", qty=10).status_code == 409
    assert shop.metric("order", "shop_orders_total", outcome="confirmed", reason="") == 1
    assert shop.metric("order", "shop_orders_total", outcome="failed", reason="out_of_stock") == 1


@pytest.mark.parametrize("body", [
    {},
    {"product_id": "P001", "qty": 1},
    {"product_id": "P001", "qty": 0, "customer_name": "x"},
    {"product_id": "P001", "qty": -2, "customer_name": "x"},
    {"product_id": "P001", "qty": 10**9, "customer_name": "x"},
    {"product_id": "P001", "qty": "two", "customer_name": "x"},
    {"product_id": "../etc", "qty": 1, "customer_name": "x"},
    {"product_id": "P001", "qty": 1, "customer_name": ""},
    {"product_id": "P001", "qty": 1, "customer_name": "x", "admin": True},
    [1, 2, 3],
])
def test_invalid_orders_get_a_json_422(shop: Shop, body: object) -> None:
    resp = httpx.post(f"{shop.url('order')}/api/orders", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_request"


def test_unknown_product_malformed_json_and_unknown_ids_are_4xx(shop: Shop) -> None:
    resp = shop.order("P999")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "product_not_found"
    resp = httpx.post(f"{shop.url('order')}/api/orders", content=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and "error" in resp.json()
    for url in (f"{shop.url('order')}/api/orders/NOPE", f"{shop.url('product')}/api/products/NOPE",
                f"{shop.url('payment')}/api/payments/NOPE", f"{shop.url('order')}/no/such/route"):
        resp = httpx.get(url)
        assert resp.status_code == 404 and resp.json()["error"]["code"].endswith("not_found"), url
    resp = httpx.delete(f"{shop.url('order')}/api/orders")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"


def test_data_survives_a_restart_of_every_service(shop: Shop) -> None:
    order = shop.order("P004", qty=2).json()
    stock = shop.stock("P004")
    for name in ("product", "payment", "order"):
        shop.restart(name)
    assert httpx.get(f"{shop.url('order')}/api/orders/{order['id']}").json()["status"] == "confirmed"
    assert httpx.get(f"{shop.url('payment')}/api/payments/{order['payment_id']}").json()["amount"] == 258.0
    assert shop.stock("P004") == stock


def test_readiness_reports_dependencies_without_failing_on_them(shop: Shop) -> None:
    body = httpx.get(f"{shop.url('order')}/ready").json()
    assert body["ready"] is True
    assert body["dependencies"]["payment"] == {"reachable": True, "circuit": "closed"}
    shop.stop("payment")
    resp = httpx.get(f"{shop.url('order')}/ready")
    assert resp.status_code == 200
    assert resp.json()["dependencies"]["payment"]["reachable"] is False
