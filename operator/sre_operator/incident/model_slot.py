"""The one model slot of an operator process: a small model on a CPU answers one question at a
time, and Incidents asking at once would only time each other out. They take turns, first come,
first served, in one line for every question.

An Incident's own question (triage's or planning's, asked in its tick) never waits inside its tick:
`turn` takes the slot when it is free and the Incident is first in line, and otherwise puts it in
line and says how long it has waited, so the tick ends and the worker thread goes to the next
Incident (open Incidents' ticks share a bounded pool of threads); it asks again at its next tick. A
question asked in the background (on the process's own few threads, `runner.Background`) waits in
the same line on its thread (`acquire`), so it never takes the slot from an Incident ahead of it
that is between two ticks. A key that stopped asking (its Incident finished, gone, or handled by
another replica) leaves the line when it has not asked again for `FORGET_SECONDS`, or at once with
`leave`. Waiting is measured on the caller's clock (the runner's `Ports.clock`)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

FORGET_SECONDS = 15.0  # far longer than the daemon loop's pause between two ticks of a waiting Incident
RECHECK_SECONDS = 1.0  # a background question renews its place at least this often while it waits


class ModelSlot:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holder: str | None = None
        self._line: dict[str, tuple[float, float]] = {}  # key → (first asked, last asked), in order of arrival

    def turn(self, key: str, now: float) -> float | None:
        """None: the slot is `key`'s now (give it back with `release`); else how long `key` has waited
        for it (0 at the first ask)."""
        with self._changed:
            first = self._queue(key, now)
            if self._take(key):
                return None
            return max(0.0, now - first)

    def still_waiting(self, key: str, now: float) -> float | None:
        """How long `key`, in line, has waited (its place renewed) while its turn cannot have come:
        the caller need not read what it would ask. None when it is not in line or its turn may have
        come."""
        with self._changed:
            self._forget(key, now)
            entry = self._line.get(key)
            if entry is None or (self._holder is None and next(iter(self._line)) == key):
                return None
            self._line[key] = (entry[0], now)
            return max(0.0, now - entry[0])

    def acquire(self, key: str, timeout: float, clock: Callable[[], float]) -> bool:
        """Waits on this thread, in line, for the slot (a background question); False after `timeout`
        seconds (of this process's monotonic time), out of the line."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._queue(key, clock())
                if self._take(key):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    self._line.pop(key, None)
                    self._changed.notify_all()
                    return False
                self._changed.wait(min(left, RECHECK_SECONDS))

    def release(self) -> None:
        with self._changed:
            self._holder = None
            self._changed.notify_all()

    def leave(self, key: str) -> None:
        """`key` no longer waits."""
        with self._changed:
            if self._line.pop(key, None) is not None:
                self._changed.notify_all()

    def waiting(self) -> list[str]:
        """The keys in line, first come first."""
        with self._changed:
            return list(self._line)

    def held_by(self) -> str | None:
        with self._changed:
            return self._holder

    def _queue(self, key: str, now: float) -> float:
        self._forget(key, now)
        first = self._line.get(key, (now, now))[0]
        self._line[key] = (first, now)
        return first

    def _take(self, key: str) -> bool:
        if self._holder is None and next(iter(self._line)) == key:
            del self._line[key]
            self._holder = key
            return True
        return False

    def _forget(self, key: str, now: float) -> None:
        kept = {k: (first, last) for k, (first, last) in self._line.items() if k == key or now - last <= FORGET_SECONDS}
        if len(kept) != len(self._line):
            self._line = kept
            self._changed.notify_all()
