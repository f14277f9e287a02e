"""Per-key rate limits: a token bucket per API key, in each worker process.

A key may make ``rate_per_s`` requests a second on average with bursts of ``burst``; beyond that
the request is answered 429 with ``Retry-After`` before any work is done. Buckets live in the
worker (with N workers a key's limit is up to N times the setting: the point is to stop one key
from taking a worker, not exact accounting). Health, readiness and metrics are not limited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.errors import RateLimitedError

MAX_KEYS = 100_000  # buckets kept; the idlest are dropped beyond this


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rate = rate_per_s
        self.burst = max(burst, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise RateLimitedError with the wait until one is free."""
        if self.rate <= 0:
            return
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitedError(
                    f"too many requests for this key: at most {self.rate:g}/s (bursts of {self.burst:g}); "
                    f"retry in {wait:.1f} s",
                    retry_after_s=wait,
                )
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_KEYS:
                for k, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: MAX_KEYS // 10]:
                    del self._buckets[k]
