"""Catalogue storage: products, stock and reservations, all changed in one SQLite transaction."""
from __future__ import annotations

import sqlite3
from typing import Any

from shop.common.db import Database
from shop.common.errors import ShopError

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, product_id TEXT NOT NULL REFERENCES products(id), qty INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'released', 'confirmed')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
"""

SEED = [
    ("P001", "Mechanical keyboard", 89.0, 100),
    ("P002", "Wireless mouse", 25.5, 200),
    ("P003", "27-inch monitor", 249.0, 50),
    ("P004", "USB-C dock", 129.0, 75),
    ("P005", "Noise-cancelling headphones", 199.0, 30),
]


# A product's par level: what a delivery refills its stock to (the seed quantity).
PAR = {pid: stock for pid, _, _, stock in SEED}


def seed(db: Database) -> None:
    with db.transaction() as conn:
        conn.executemany("INSERT OR IGNORE INTO products (id, name, price, stock) VALUES (?, ?, ?, ?)", SEED)


def _product(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "price": row["price"], "stock": row["stock"]}


def _reservation(row: sqlite3.Row) -> dict[str, Any]:
    return {"reservation_id": row["id"], "product_id": row["product_id"], "qty": row["qty"],
            "state": row["state"], "created_at": row["created_at"]}


def list_products(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [_product(r) for r in conn.execute("SELECT * FROM products ORDER BY id")]


def get_product(db: Database, product_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        raise ShopError(404, "product_not_found", f"no product {product_id!r}")
    return _product(row)


def reserve(db: Database, product_id: str, reservation_id: str, qty: int,
            restock_below: int = 0) -> tuple[dict[str, Any], bool]:
    """Take `qty` from stock under `reservation_id`. Idempotent: the same id returns the same
    reservation (created=False); the same id for another product or quantity is a conflict.
    A product whose stock is below `restock_below` (0: never) is refilled to its par level first,
    as a supplier's standing order would: a shop that runs for hours keeps selling."""
    with db.transaction() as conn:
        existing = conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
        if existing is not None:
            if existing["product_id"] != product_id or existing["qty"] != qty:
                raise ShopError(409, "reservation_conflict",
                                f"reservation {reservation_id!r} exists for another product or quantity")
            return _reservation(existing), False
        product = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
        if product is None:
            raise ShopError(404, "product_not_found", f"no product {product_id!r}")
        par = PAR.get(product_id, 0)
        if product["stock"] < min(restock_below, par):
            conn.execute("UPDATE products SET stock = ? WHERE id = ?", (par, product_id))
            product = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
        if product["stock"] < qty:
            raise ShopError(409, "insufficient_stock",
                            f"only {product['stock']} of {product_id} left, {qty} requested",
                            {"available": product["stock"], "requested": qty})
        conn.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (qty, product_id))
        conn.execute("INSERT INTO reservations (id, product_id, qty, state) VALUES (?, ?, ?, 'reserved')",
                     (reservation_id, product_id, qty))
        row = conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
        return _reservation(row), True


def _existing_reservation(conn: sqlite3.Connection, product_id: str, reservation_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM reservations WHERE id = ? AND product_id = ?",
                       (reservation_id, product_id)).fetchone()
    if row is None:
        raise ShopError(404, "reservation_not_found", f"no reservation {reservation_id!r} for {product_id}")
    return row


def release(db: Database, product_id: str, reservation_id: str) -> dict[str, Any]:
    """Give a reserved quantity back to stock. Idempotent; a confirmed reservation cannot be released."""
    with db.transaction() as conn:
        row = _existing_reservation(conn, product_id, reservation_id)
        if row["state"] == "confirmed":
            raise ShopError(409, "reservation_confirmed", f"reservation {reservation_id!r} is already confirmed")
        if row["state"] == "reserved":
            conn.execute("UPDATE products SET stock = stock + ? WHERE id = ?", (row["qty"], product_id))
            conn.execute("UPDATE reservations SET state = 'released' WHERE id = ?", (reservation_id,))
        row = conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
        return _reservation(row)


def confirm(db: Database, product_id: str, reservation_id: str) -> dict[str, Any]:
    """Make a reservation final (the order was paid). Idempotent; a released one cannot be confirmed."""
    with db.transaction() as conn:
        row = _existing_reservation(conn, product_id, reservation_id)
        if row["state"] == "released":
            raise ShopError(409, "reservation_released", f"reservation {reservation_id!r} was released")
        conn.execute("UPDATE reservations SET state = 'confirmed' WHERE id = ?", (reservation_id,))
        row = conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
        return _reservation(row)
