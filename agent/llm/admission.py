"""A bounded queue in front of a process's LLM work: under load, requests shed at once.

On CPU the model serves one or two prompts at a time; without a bound, every concurrent request
sends its prompts, they all queue inside the server and time out together at random. Here at most
``max_in_flight`` requests do LLM work at once, at most ``max_waiting`` more wait for a slot (no
longer than their own deadline), and any request beyond that is refused immediately, so it serves
the feature ranker's order and template explanations with a note instead of waiting to time out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from core.metrics import LLM_QUEUE, LLM_SHED


class LLMAdmission:
    def __init__(self, max_in_flight: int, max_waiting: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self._cv = threading.Condition()
        self._in_flight = 0
        self._waiting = 0

    @contextmanager
    def slot(self, deadline: float) -> Iterator[str | None]:
        """Yields None when admitted (the slot is held until the block ends), else why not."""
        why = self._enter(deadline)
        try:
            yield why
        finally:
            if why is None:
                with self._cv:
                    self._in_flight -= 1
                    self._cv.notify()

    def _enter(self, deadline: float) -> str | None:
        with self._cv:
            if self._in_flight < self.max_in_flight:
                self._in_flight += 1
                return None
            if self._waiting >= self.max_waiting:
                LLM_SHED.inc()
                return f"LLM busy: {self._in_flight} requests in progress and {self._waiting} waiting"
            self._waiting += 1
            LLM_QUEUE.inc()
            try:
                while self._in_flight >= self.max_in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        LLM_SHED.inc()
                        return "LLM busy: no slot before this request's deadline"
                    self._cv.wait(left)
                self._in_flight += 1
                return None
            finally:
                self._waiting -= 1
                LLM_QUEUE.dec()

    def status(self) -> dict[str, int]:
        with self._cv:
            return {
                "in_flight": self._in_flight,
                "waiting": self._waiting,
                "max_in_flight": self.max_in_flight,
                "max_waiting": self.max_waiting,
            }
