"""Payments are idempotent under an Idempotency-Key."""
from __future__ import annotations

import httpx

from .conftest import Shop


def test_a_retried_charge_is_not_charged_twice(shop: Shop) -> None:
    url = f"{shop.url('payment')}/api/payments"
    body = {"order_id": "ORD-X1", "amount": 12.5, "customer_name": "Ann"}
    first = httpx.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    second = httpx.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert httpx.get(url, params={"order_id": "ORD-X1"}).json()["count"] == 1


def test_the_same_key_for_another_request_is_a_conflict(shop: Shop) -> None:
    url = f"{shop.url('payment')}/api/payments"
    httpx.post(url, json={"order_id": "ORD-X2", "amount": 5, "customer_name": "Ann"},
               headers={"Idempotency-Key": "k-2"}).raise_for_status()
    resp = httpx.post(url, json={"order_id": "ORD-X2", "amount": 6, "customer_name": "Ann"},
                      headers={"Idempotency-Key": "k-2"})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "idempotency_key_reused"


def test_without_a_key_each_request_is_a_new_charge(shop: Shop) -> None:
    url = f"{shop.url('payment')}/api/payments"
    body = {"order_id": "ORD-X3", "amount": 1, "customer_name": "Ann"}
    assert httpx.post(url, json=body).json()["id"] != httpx.post(url, json=body).json()["id"]


def test_invalid_payments_are_422(shop: Shop) -> None:
    url = f"{shop.url('payment')}/api/payments"
    for body in ({"order_id": "o", "amount": -1, "customer_name": "a"}, {"order_id": "o", "amount": 1},
                 {"order_id": "o", "amount": "lots", "customer_name": "a"}):
        resp = httpx.post(url, json=body)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_request"
    resp = httpx.post(url, json={"order_id": "o", "amount": 1, "customer_name": "a"}, headers={"Idempotency-Key": ""})
    assert resp.status_code == 422


def test_settle_returns_the_charge_or_closes_the_key_for_good(shop: Shop) -> None:
    """What order asks when a charge's answer was lost: made (then the payment), or not, and then
    never: a charge under that key that arrives later is refused."""
    url = f"{shop.url('payment')}/api/payments"
    body = {"order_id": "ORD-X4", "amount": 3, "customer_name": "Ann"}
    made = httpx.post(url, json=body, headers={"Idempotency-Key": "k-4"}).json()
    settled = httpx.post(f"{url}/settle", headers={"Idempotency-Key": "k-4"}).json()
    assert settled["made"] is True and settled["payment"]["id"] == made["id"]
    assert httpx.post(url, json=body, headers={"Idempotency-Key": "k-4"}).status_code == 200  # still replays
    settled = httpx.post(f"{url}/settle", headers={"Idempotency-Key": "k-5"}).json()
    assert settled == {"idempotency_key": "k-5", "made": False, "payment": None}
    late = httpx.post(url, json={**body, "order_id": "ORD-X5"}, headers={"Idempotency-Key": "k-5"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "idempotency_key_closed"
    assert httpx.get(url, params={"order_id": "ORD-X5"}).json()["count"] == 0
    assert httpx.post(f"{url}/settle").status_code == 422  # the key is required
