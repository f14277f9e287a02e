"""A small circuit breaker around the LLM: after N consecutive failures, skip calls for a cool-down,
then let one probe through. Thread-safe; one per client."""

from __future__ import annotations

import threading
import time


class CircuitOpenError(Exception):
    """The breaker is open: the LLM failed recently; callers fall back without waiting."""


class CircuitBreaker:
    def __init__(self, failures_to_open: int = 3, cooldown_s: float = 30.0, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def before_call(self) -> None:
        if self.state == "open":
            raise CircuitOpenError("LLM circuit open after repeated failures")

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.failures_to_open:
                self._opened_at = self._clock()
