"""Keeps the embedded LLM server running: when it dies it is started again after a backoff.

`chronotope llm serve` and the demo run their embedded vLLM under this. A server that exits (a
crash, the OOM killer, someone's kill) is logged with its exit code and the tail of its log and
started again after ``first_backoff_s``, doubling up to ``max_backoff_s`` while it keeps dying; a
server that stayed up for ``stable_s`` resets the backoff. Requests meanwhile get the feature
ranker and templates through the breaker, as with any unreachable LLM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.llm.server import ServerHandle

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        start: Callable[[], ServerHandle],
        *,
        first_backoff_s: float = 5.0,
        max_backoff_s: float = 300.0,
        stable_s: float = 600.0,
        poll_s: float = 1.0,
        say: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.start = start
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stable_s = stable_s
        self.poll_s = poll_s
        self.say = say
        self.handle: ServerHandle | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        """Start the server and keep it running until ``stop()``; blocks (run it in a thread)."""
        backoff = self.first_backoff_s
        while not self._stop.is_set():
            try:
                self.handle = self.start()
            except Exception as exc:  # start-up failed (the runtime, the model, a port in use)
                self.last_exit = f"start failed: {exc}"[:300]
                log.error("the embedded LLM server did not start (%s); trying again in %.0f s", exc, backoff)
                self.say(f"LLM server did not start ({exc}); trying again in {backoff:.0f} s")
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            up_since = time.monotonic()
            while not self._stop.is_set() and self.handle.alive():
                self._stop.wait(self.poll_s)
            if self._stop.is_set():
                break
            code = self.handle.process.poll()
            tail = _tail(self.handle)
            # The API process is gone but vLLM's engine and workers may not be: stop the whole
            # group before starting another server beside them.
            orphans = self.handle.stop()
            if orphans:
                log.warning("stopped %d leftover processes of the dead LLM server", orphans)
            if time.monotonic() - up_since >= self.stable_s:
                backoff = self.first_backoff_s  # it had been fine: a one-off crash
            self.restarts += 1
            self.last_exit = f"exit code {code}"
            log.error(
                "the embedded LLM server exited (code %s) after %.0f s; restart %d in %.0f s; log tail: %s",
                code, time.monotonic() - up_since, self.restarts, backoff, tail,
            )  # fmt: skip
            self.say(f"LLM server exited (code {code}); restarting in {backoff:.0f} s")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.max_backoff_s)
        if self.handle is not None:
            self.handle.stop()

    def run_in_background(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="llm-supervisor", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()
        if self.handle is not None:
            self.handle.stop()


def _tail(handle: ServerHandle, chars: int = 400) -> str:
    try:
        return handle.log_path.read_text(errors="replace")[-chars:].replace("\n", " | ")
    except OSError:
        return "(no log)"
