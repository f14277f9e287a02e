"""A circuit breaker around an LLM server: after N consecutive failures, skip calls for a cool-down,
then let exactly one probe through; its outcome closes the circuit or opens it for another
cool-down, twice as long each time a probe fails (up to ``max_cooldown_s``), and everyone else
falls back without waiting meanwhile. Thread-safe.

The growing cool-down matters for a hung server: with a fixed 30 s, a person typing a message every
half minute made every turn the probe and waited out its whole timeout each time.

One breaker per server (``breaker_for``): the reranker, the explainer and the chat share it, so
when the server is down they all stop waiting for it at once, and one probe (not one per caller)
finds out when it is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitOpenError(Exception):
    """The breaker is open: the LLM failed recently; callers fall back without waiting."""


class CircuitBreaker:
    def __init__(
        self,
        failures_to_open: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        probe_timeout_s: float = 120.0,
        max_cooldown_s: float = 300.0,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._cooldown = cooldown_s  # the current one: doubled by each failed probe
        self.probe_timeout_s = probe_timeout_s  # a probe that never reports back frees the slot
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_since: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._cooldown else "open"

    def before_call(self) -> None:
        """Raise CircuitOpenError unless this caller may call: always when closed; when half-open,
        only the one probe (until it reports success or failure)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            now = self._clock()
            if state == "half-open" and (
                self._probe_since is None or now - self._probe_since >= self.probe_timeout_s
            ):
                self._probe_since = now
                return
            raise CircuitOpenError("LLM circuit open after repeated failures")

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probe_since = None
            self._cooldown = self.cooldown_s

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probe_since is not None:  # a failed probe: open again, for longer
                self._cooldown = min(self._cooldown * 2, self.max_cooldown_s)
                self._opened_at = self._clock()
            elif self._failures >= self.failures_to_open:
                self._opened_at = self._clock()
            self._probe_since = None


_BREAKERS: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(base_url: str) -> CircuitBreaker:
    """The one breaker of the LLM server at ``base_url`` in this process."""
    key = base_url.rstrip("/")
    with _REGISTRY_LOCK:
        return _BREAKERS.setdefault(key, CircuitBreaker())


def reset_breakers() -> None:
    """Forget every server's breaker (tests start each case from closed circuits)."""
    with _REGISTRY_LOCK:
        _BREAKERS.clear()
