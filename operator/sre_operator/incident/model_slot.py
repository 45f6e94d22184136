"""The one model slot of an operator process: a small model on a CPU answers one question at a
time, and Incidents asking at once would only time each other out. They take turns.

An Incident's own question (triage's or planning's, asked in its tick) never waits inside its tick:
`turn` takes the slot when it is free and it is the Incident's turn, and otherwise puts the Incident
in line and says how long it has waited, so the tick ends and the worker thread goes to the next
Incident (open Incidents' ticks share a bounded pool of threads). Turns are first come, first
served; an Incident that stopped asking (finished, gone, or asked by another replica) leaves the
line when it has not asked again for `FORGET_SECONDS`. A question asked in the background (on the
process's own few threads, `runner.Background`) waits for the slot on its thread (`acquire`).
Waiting is measured on the caller's clock (the runner's `Ports.clock`)."""
from __future__ import annotations

import threading

FORGET_SECONDS = 15.0  # far longer than the daemon loop's pause between two ticks of a waiting Incident


class ModelSlot:
    def __init__(self) -> None:
        self._slot = threading.Lock()
        self._guard = threading.Lock()
        self._line: dict[str, tuple[float, float]] = {}  # key → (first asked, last asked), in order of arrival

    def turn(self, key: str, now: float) -> float | None:
        """None: the slot is `key`'s now (give it back with `release`); else how long `key` has waited
        for it (0 at the first ask)."""
        with self._guard:
            self._forget(key, now)
            first = self._line.get(key, (now, now))[0]
            self._line[key] = (first, now)
            if next(iter(self._line)) == key and self._slot.acquire(blocking=False):
                del self._line[key]
                return None
            return max(0.0, now - first)

    def still_waiting(self, key: str, now: float) -> float | None:
        """How long `key`, in line, has waited (its ask renewed), while its turn cannot have come: the
        caller need not read what it would ask. None when it is not in line or the slot may be its own."""
        with self._guard:
            self._forget(key, now)
            entry = self._line.get(key)
            if entry is None or (next(iter(self._line)) == key and not self._slot.locked()):
                return None
            self._line[key] = (entry[0], now)
            return max(0.0, now - entry[0])

    def _forget(self, key: str, now: float) -> None:
        self._line = {k: (first, last) for k, (first, last) in self._line.items()
                      if k == key or now - last <= FORGET_SECONDS}

    def leave(self, key: str) -> None:
        """`key` no longer waits (it gave up)."""
        with self._guard:
            self._line.pop(key, None)

    def waiting(self) -> list[str]:
        """The keys in line, first come first."""
        with self._guard:
            return list(self._line)

    def acquire(self, timeout: float) -> bool:
        """Waits on this thread for the slot (a background question); False after `timeout` seconds."""
        return self._slot.acquire(timeout=timeout)

    def release(self) -> None:
        self._slot.release()

    def locked(self) -> bool:
        return self._slot.locked()
