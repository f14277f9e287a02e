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

    def catch_up(self) -> bool:
        """Fold in every change after the served version; True when the state moved."""
        with self._lock:
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
