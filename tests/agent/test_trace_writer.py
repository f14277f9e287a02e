"""Batched trace writes: off the request path, readable within the interval, none lost."""

from __future__ import annotations

from sqlalchemy import func, select
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
