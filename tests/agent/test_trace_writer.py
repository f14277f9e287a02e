"""Batched trace writes: off the request path, readable within the interval, none lost."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agent.trace_writer import TraceWriter
from core.models import Recommendation, User


def _rec(i: int, user: str = "u1") -> Recommendation:
    return Recommendation(id=f"r{i}", user_id=user, request={}, items=[], ranker="heuristic", candidates=[])


def _count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Recommendation)) or 0)


def test_traces_are_written_in_batches_and_flush_waits_for_them(
    sqlite_session_factory: sessionmaker[Session],
) -> None:
    with sqlite_session_factory() as s:
        s.add(User(id="u1", attributes={}))
        s.commit()
    w = TraceWriter(sqlite_session_factory, interval_s=5.0)  # long: only flush can make them appear
    for i in range(50):
        w.submit(_rec(i))
    assert w.flush(timeout=10)
    assert _count(sqlite_session_factory) == 50 and w.pending() == 0 and w.written == 50


def test_a_bad_trace_does_not_take_the_batch_with_it(sqlite_session_factory: sessionmaker[Session]) -> None:
    with sqlite_session_factory() as s:
        s.add(User(id="u1", attributes={}))
        s.commit()
    w = TraceWriter(sqlite_session_factory, interval_s=0.05)
    w.submit(_rec(1))
    w.submit(_rec(2, user="nobody"))  # violates the users foreign key
    w.submit(_rec(3))
    assert w.flush(timeout=30)
    with sqlite_session_factory() as s:
        assert sorted(s.scalars(select(Recommendation.id))) == ["r1", "r3"]


def test_traces_wait_out_a_store_outage_and_are_inserted_after(
    sqlite_session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits fail after the INSERTs were sent (a full disk, a dropped connection): the writer
    keeps the traces and stores them once the store is back. A failed commit leaves the rows
    detached with an identity; added again as they were, they counted as stored and were never
    inserted (found by tests/integration/test_store_faults.py)."""
    with sqlite_session_factory() as s:
        s.add(User(id="u1", attributes={}))
        s.commit()
    real_commit = Session.commit
    failures = {"left": 3}

    def flaky_commit(self: Session) -> None:
        if failures["left"] > 0 and any(isinstance(o, Recommendation) for o in self.new):
            failures["left"] -= 1
            self.flush()  # the INSERTs reach the connection, then the commit fails
            raise OperationalError("COMMIT", {}, Exception("database or disk is full"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", flaky_commit)
    monkeypatch.setattr("agent.trace_writer.RETRY_PAUSE_S", 0.01)
    w = TraceWriter(sqlite_session_factory, interval_s=0.01)
    for i in range(5):
        w.submit(_rec(i))
    assert w.holds("r0")
    assert w.flush(timeout=20)
    assert failures["left"] == 0 and _count(sqlite_session_factory) == 5 and w.written == 5
    assert not w.holds("r0")
