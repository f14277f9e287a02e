"""Recommendation traces written off the request path, in batches, none lost.

A request hands its ``Recommendation`` row to ``submit`` and answers; one thread per worker writes
what has queued up in one transaction every ``interval_s`` (a few ms of store time for dozens of
traces, instead of a commit inside every request). While the store is down or full the batch
waits here and is retried with backoff (up to ``outage_s``); a batch the store refuses is retried
row by row, then again after a pause, so one bad row cannot take the others with it; ``flush`` waits
until everything submitted so far is stored (the trace route calls it before a 404, the app's
shutdown before exiting).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, make_transient, sessionmaker

from core.metrics import TRACE_QUEUE, TRACES_WRITTEN
from core.models import Recommendation

log = logging.getLogger(__name__)
RETRY_PAUSE_S = 0.5
MAX_PAUSE_S = 4.0
BAD_ROW_TRIES = 3  # a row the store refuses (not an outage) is tried this often
OUTAGE_S = 300.0  # how long traces wait for a store that is down or full before they are dropped


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class TraceWriter:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        interval_s: float = 0.1,
        max_batch: int = 500,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self.factory = factory
        self.outage_s = outage_s
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._q: queue.Queue[Recommendation | _Flush | None] = queue.Queue()
        self._held: set[str] = set()  # ids submitted and not yet stored (or given up)
        self._held_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
        self._thread.start()
        self.written = 0

    def submit(self, record: Recommendation) -> None:
        with self._held_lock:
            self._held.add(record.id)
        self._q.put(record)
        TRACE_QUEUE.inc()

    def holds(self, recommendation_id: str) -> bool:
        """Whether this worker served it and its trace still waits to be stored."""
        with self._held_lock:
            return recommendation_id in self._held

    def pending(self) -> int:
        return self._q.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every trace submitted before this call is stored; False on timeout."""
        marker = _Flush()
        self._q.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop (the app's shutdown)."""
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error(
                "trace writer did not finish within %.0f s; %d trace(s) unwritten", timeout, self.pending()
            )

    def _run(self) -> None:
        while True:
            first = self._q.get()
            batch: list[Recommendation] = []
            markers: list[_Flush] = []
            stop = False
            item: Recommendation | _Flush | None = first
            deadline = time.monotonic() + self.interval_s
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or markers or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._q.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for m in markers:
                m.done.set()
            if stop:
                # Whatever arrived after the stop marker (a request finishing late) is written too.
                rest = [r for r in iter_nowait(self._q) if isinstance(r, Recommendation)]
                if rest:
                    self._write(rest)
                return

    def _write(self, batch: list[Recommendation]) -> None:
        last: Exception | None = None
        attempt = 0
        outage_since: float | None = None
        while batch:
            if attempt:
                # A failed commit leaves the rows detached with an identity: added again they would
                # count as stored and never be inserted. (A row that did reach the store before the
                # error is then a duplicate key, which the row-by-row merge below absorbs.)
                for rec in batch:
                    make_transient(rec)
            try:
                with self.factory() as s:
                    s.add_all(batch)
                    s.commit()
                self._done(batch, "ok" if attempt == 0 else "retried")
                return
            except (OperationalError, InterfaceError) as exc:
                # The store is down, restarting or full: every row would fail alike. Wait for it
                # (the traces stay queued here) for up to outage_s, with backoff.
                last = exc
                now = time.monotonic()
                outage_since = outage_since if outage_since is not None else now
                if now - outage_since > self.outage_s:
                    break
                if attempt == 0 or attempt % 10 == 0:
                    log.warning(
                        "store unavailable for %d trace(s) (%s); retrying for up to %.0f s",
                        len(batch), str(exc).splitlines()[0][:160], self.outage_s,
                    )  # fmt: skip
                time.sleep(min(RETRY_PAUSE_S * 2 ** min(attempt, 3), MAX_PAUSE_S))
                attempt += 1
                continue
            except Exception as exc:
                log.warning("writing %d trace(s) failed (%s); retrying row by row", len(batch), exc)
                last = exc
            attempt += 1
            left = []
            for rec in batch:  # isolate a bad row: the others are stored
                try:
                    with self.factory() as s:
                        s.merge(rec)
                        s.commit()
                    self._done([rec], "retried")
                except Exception as exc:
                    left.append(rec)
                    last = exc
            batch = left
            if attempt >= BAD_ROW_TRIES:
                break
            if batch:
                time.sleep(RETRY_PAUSE_S)
        for rec in batch:
            log.error("trace %s could not be stored: %s", rec.id, last)
        self._release(batch)
        TRACE_QUEUE.dec(len(batch))

    def _release(self, batch: list[Recommendation]) -> None:
        with self._held_lock:
            self._held.difference_update(r.id for r in batch)

    def _done(self, batch: list[Recommendation], outcome: str) -> None:
        self._release(batch)
        self.written += len(batch)
        TRACE_QUEUE.dec(len(batch))
        TRACES_WRITTEN.labels(outcome).inc(len(batch))


def iter_nowait(q: queue.Queue[Recommendation | _Flush | None]) -> list[Recommendation | _Flush | None]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
