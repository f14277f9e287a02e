"""Re-mining users after new events, in the background of the worker that took them.

POST /v1/events answers once the events are stored and served; the touched users' profiles are
re-mined here afterwards (one thread, users batched over ``delay_s``), so a request never waits
for mining. Requests read profiles from the store and see the new version when it is saved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from jobs.mine import mine_users

log = logging.getLogger(__name__)


class BackgroundMiner:
    def __init__(
        self, factory: sessionmaker[Session], data_dir: Path | None, *, delay_s: float = 1.0
    ) -> None:
        self.factory = factory
        self.data_dir = data_dir
        self.delay_s = delay_s
        self._pending: set[str] = set()
        self._cv = threading.Condition()
        self._stop = False
        self.mined = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="background-mining", daemon=True)
        self._thread.start()

    def submit(self, user_ids: Iterable[str]) -> None:
        with self._cv:
            self._pending.update(str(u) for u in user_ids)
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._pending)

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                # let a burst of posts gather into one run
                self._cv.wait(self.delay_s)
                if self._stop:
                    return
                users, self._pending = sorted(self._pending), set()
            try:
                counts = mine_users(self.factory, users, data_dir=self.data_dir, workers=1)
                self.mined += counts["mined"]
                self.last_error = None
            except Exception as exc:  # a user deleted meanwhile, a locked store: log, keep going
                self.last_error = repr(exc)
                log.warning("background re-mining of %d user(s) failed: %s", len(users), exc)
