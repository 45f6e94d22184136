"""SQLite storage on a volume: one file per service, WAL mode, schema created on start.

Calls are short and local, so the services run them on the event loop's thread pool via
`asyncio.to_thread`, with one connection per call and `BEGIN IMMEDIATE` for writes that must not race.

`Pool` makes the database behave like a remote one when asked to (`SHOP_DB_POOL_SIZE`,
`SHOP_DB_QUERY_MS`): a query first waits for one of N connections, then pays the round trip. Its
gauges (connections in use, requests waiting) are the service's saturation signal.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Pool:
    """N connections to a database `query_ms` away; size 0: no limit and no round trip."""

    def __init__(self, size: int = 0, query_ms: int = 0,
                 on_change: Callable[[int, int], None] | None = None) -> None:
        self.size = size
        self.query_ms = query_ms
        self.in_use = 0
        self.waiting = 0
        self._sem = asyncio.Semaphore(size) if size > 0 else None
        self._on_change = on_change or (lambda _in_use, _waiting: None)

    async def run(self, fn: Callable[[], T]) -> T:
        if self._sem is None:
            if self.query_ms:
                await asyncio.sleep(self.query_ms / 1000)
            return await asyncio.to_thread(fn)
        self.waiting += 1
        self._on_change(self.in_use, self.waiting)
        async with self._sem:
            self.waiting -= 1
            self.in_use += 1
            self._on_change(self.in_use, self.waiting)
            try:
                if self.query_ms:
                    await asyncio.sleep(self.query_ms / 1000)
                return await asyncio.to_thread(fn)
            finally:
                self.in_use -= 1
                self._on_change(self.in_use, self.waiting)


class Database:
    def __init__(self, path: Path, schema: str, pool: Pool | None = None) -> None:
        self.path = path
        self.pool = pool or Pool()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def healthy(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    async def run(self, fn: Callable[[], T]) -> T:
        """A query through the pool (waits for a connection when all are busy)."""
        return await self.pool.run(fn)

    async def run_direct(self, fn: Callable[[], T]) -> T:
        """Outside the pool: health checks must answer while the pool is saturated."""
        return await asyncio.to_thread(fn)
