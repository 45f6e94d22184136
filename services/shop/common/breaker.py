"""A circuit breaker per outbound target: closed → open after N consecutive failures → half-open
after a cool-down, where exactly one probe call decides between closed and open again.

Pure state machine with an injectable clock; the state is mirrored into a gauge by the caller.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable


class State(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpenError(Exception):
    def __init__(self, target: str, retry_in: float) -> None:
        super().__init__(f"circuit to {target} is open; next probe in {retry_in:.1f}s")
        self.target = target
        self.retry_in = retry_in


class CircuitBreaker:
    def __init__(self, target: str, failure_threshold: int = 5, reset_after_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[State], None] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.target = target
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        if on_change:
            on_change(self._state)

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_after_s:
            self._set(State.HALF_OPEN)
        return self._state

    def _set(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change:
                self._on_change(state)

    def before_call(self) -> None:
        """Raise CircuitOpenError if the call must not be made now."""
        state = self.state
        if state is State.OPEN:
            raise CircuitOpenError(self.target, self.reset_after_s - (self._clock() - self._opened_at))
        if state is State.HALF_OPEN:
            if self._probe_in_flight:
                raise CircuitOpenError(self.target, 0.0)
            self._probe_in_flight = True

    def record_success(self) -> None:
        self._probe_in_flight = False
        self._failures = 0
        self._set(State.CLOSED)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        if self._state is State.HALF_OPEN:
            self._trip()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._trip()

    def _trip(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._set(State.OPEN)
