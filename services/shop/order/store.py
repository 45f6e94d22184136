"""Orders storage: each order with its state, reason and the saga's steps."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from shop.common.db import Database
from shop.common.errors import ShopError

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, product_id TEXT NOT NULL, qty INTEGER NOT NULL, customer_name TEXT NOT NULL,
    amount REAL, status TEXT NOT NULL, reason TEXT, payment_id TEXT, steps TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);
"""


def _order(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {k: row[k] for k in ("id", "product_id", "qty", "customer_name", "amount", "status",
                                                "payment_id", "created_at", "updated_at")}
    if row["reason"]:
        out["reason"] = row["reason"]
    out["steps"] = json.loads(row["steps"])
    return out


def create(db: Database, order_id: str, product_id: str, qty: int, customer_name: str) -> dict[str, Any]:
    with db.transaction() as conn:
        conn.execute("INSERT INTO orders (id, product_id, qty, customer_name, status) VALUES (?, ?, ?, ?, 'pending')",
                     (order_id, product_id, qty, customer_name))
        return _order(conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone())


def update(db: Database, order_id: str, **fields: Any) -> dict[str, Any]:
    if "steps" in fields:
        fields["steps"] = json.dumps(fields["steps"])
    cols = ", ".join(f"{k} = ?" for k in fields)
    with db.transaction() as conn:
        # The column names come from our own callers; every value is bound.
        sql = f"UPDATE orders SET {cols}, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?"  # noqa: S608
        conn.execute(sql, (*fields.values(), order_id))
        return _order(conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone())


def get(db: Database, order_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise ShopError(404, "order_not_found", f"no order {order_id!r}")
    return _order(row)


def recent(db: Database, limit: int, status: str | None) -> list[dict[str, Any]]:
    query, args = "SELECT * FROM orders", []
    if status:
        query, args = query + " WHERE status = ?", [status]
    with db.connect() as conn:
        rows = conn.execute(query + " ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
    return [_order(r) for r in rows]


def stuck(db: Database, grace_s: float) -> list[dict[str, Any]]:
    """Orders still `pending` that have not moved for `grace_s` seconds, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT * FROM orders WHERE status = 'pending' AND updated_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
            " ORDER BY updated_at LIMIT 100", (f"-{grace_s:.3f} seconds",)).fetchall()
    return [_order(r) for r in rows]
