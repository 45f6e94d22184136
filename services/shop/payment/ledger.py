"""Payments storage. A charge made under an idempotency key is stored with a hash of its request,
so a retry with the same key returns the first result instead of charging again."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from typing import Any

from shop.common.db import Database
from shop.common.errors import ShopError

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount REAL NOT NULL, customer_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('approved', 'declined')), reason TEXT,
    idempotency_key TEXT UNIQUE, request_hash TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE IF NOT EXISTS closed_keys (
    idempotency_key TEXT PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
"""


def _payment(row: sqlite3.Row) -> dict[str, Any]:
    out = {"id": row["id"], "order_id": row["order_id"], "amount": row["amount"],
           "customer_name": row["customer_name"], "status": row["status"], "created_at": row["created_at"]}
    if row["reason"]:
        out["reason"] = row["reason"]
    return out


def request_hash(order_id: str, amount: float, customer_name: str) -> str:
    blob = json.dumps({"order_id": order_id, "amount": round(amount, 2), "customer_name": customer_name},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def charge(db: Database, *, order_id: str, amount: float, customer_name: str, idempotency_key: str | None,
           max_amount: float) -> tuple[dict[str, Any], bool]:
    """Returns (payment, replayed). Declines (status `declined`, with a reason) above `max_amount`."""
    digest = request_hash(order_id, amount, customer_name)
    with db.transaction() as conn:
        if idempotency_key is not None:
            if conn.execute("SELECT 1 FROM closed_keys WHERE idempotency_key = ?", (idempotency_key,)).fetchone():
                raise ShopError(409, "idempotency_key_closed",
                                "the caller gave up the charge under this Idempotency-Key; it is not made")
            row = conn.execute("SELECT * FROM payments WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            if row is not None:
                if row["request_hash"] != digest:
                    raise ShopError(409, "idempotency_key_reused",
                                    "this Idempotency-Key was used for a different payment request")
                return _payment(row), True
        status, reason = "approved", None
        if amount > max_amount:
            status, reason = "declined", f"amount {amount:.2f} is above the limit of {max_amount:.2f}"
        payment_id = "PAY-" + uuid.uuid4().hex[:12].upper()
        conn.execute(
            "INSERT INTO payments (id, order_id, amount, customer_name, status, reason, idempotency_key,"
            " request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (payment_id, order_id, amount, customer_name, status, reason, idempotency_key, digest))
        row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        return _payment(row), False


def get(db: Database, payment_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
    if row is None:
        raise ShopError(404, "payment_not_found", f"no payment {payment_id!r}")
    return _payment(row)


def count_for_order(db: Database, order_id: str) -> int:
    with db.connect() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM payments WHERE order_id = ?", (order_id,)).fetchone()[0])


def settle(db: Database, idempotency_key: str) -> dict[str, Any] | None:
    """The payment made under `idempotency_key`, or None after closing the key: a caller whose charge
    timed out asks this before it compensates. One transaction with `charge`'s, so a charge still on
    its way is either here already or refused when it comes (never made after the caller was told no)."""
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM payments WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        if row is not None:
            return _payment(row)
        conn.execute("INSERT OR IGNORE INTO closed_keys (idempotency_key) VALUES (?)", (idempotency_key,))
        return None
