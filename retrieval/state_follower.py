"""Keeps one API worker on the store's latest state version (core.state_changes).

Every worker polls the version row (works on SQLite and PostgreSQL alike); when a write through
any worker or the CLI has moved it, the follower reads the changed users' histories and swaps in
the next serving state. A bulk change (more users than ``max_users``) rebuilds the whole state.
Failures are logged and retried at the next poll; the previous state keeps serving meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from core.metrics import STATE_VERSION
from core.state_changes import changes_since
from retrieval.service import Retriever

log = logging.getLogger(__name__)


class StateFollower:
    def __init__(
        self,
        retriever: Retriever,
        factory: sessionmaker[Session],
        *,
        interval_s: float = 1.0,
        max_users: int = 2000,
    ) -> None:
        self.retriever = retriever
        self.factory = factory
        self.interval_s = interval_s
        self.max_users = max_users
        self.last_error: str | None = None
        self.last_poll: float | None = None
        self._lock = threading.Lock()  # catch_up from a route and from the poller, one at a time
        STATE_VERSION.set(retriever.version)

    def catch_up_to(self, seq: int, timeout_s: float = 10.0) -> bool:
        """Return once the served version covers ``seq`` (a write this worker just committed), or
        after ``timeout_s`` (the poller folds it in then). Concurrent writers coalesce: one folds in
        everything pending while the others wait, and a writer whose change was folded in by
        someone else's pass returns without a pass of its own (each used to run one, in turn)."""
        deadline = time.monotonic() + timeout_s
        while self.retriever.version < seq:
            left = deadline - time.monotonic()
            if left <= 0 or not self._lock.acquire(timeout=left):
                return False
            try:
                if self.retriever.version < seq and not self._catch_up_locked():
                    return False  # nothing newer in the store (it cannot reach seq): no busy loop
            finally:
                self._lock.release()
        return True

    def catch_up(self) -> bool:
        """Fold in every change after the served version; True when the state moved."""
        with self._lock:
            return self._catch_up_locked()

    def _catch_up_locked(self) -> bool:
        """``catch_up`` for a caller that holds ``self._lock``."""
        before = self.retriever.version
        with self.factory() as s:
            changes = changes_since(s, before, max_users=self.max_users)
            if changes.seq <= before:
                self.last_poll = time.time()
                return False
            t0 = time.perf_counter()
            if changes.user_ids is None:
                s.close()
                self.retriever.reload(self.factory)
            else:
                self.retriever.refresh_users(s, changes.user_ids, version=changes.seq)
        STATE_VERSION.set(self.retriever.version)
        self.last_poll = time.time()
        log.info(
            "serving state %d -> %d (%s) in %.0f ms",
            before,
            self.retriever.version,
            "rebuilt" if changes.user_ids is None else f"{len(changes.user_ids)} user(s)",
            (time.perf_counter() - t0) * 1000,
        )
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.catch_up()
                self.last_error = None
            except Exception as exc:  # keep serving the state we have; try again next poll
                if self.last_error != repr(exc):
                    log.warning("could not follow the store's state version: %s", exc)
                self.last_error = repr(exc)

    def start(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), name="state-follower", daemon=True)
        t.start()
        return t

    def status(self) -> dict[str, object]:
        return {
            "version": self.retriever.version,
            "poll_s": self.interval_s,
            "last_poll_age_s": None if self.last_poll is None else round(time.time() - self.last_poll, 1),
            "error": self.last_error,
        }
