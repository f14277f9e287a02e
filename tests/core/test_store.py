"""The schema behaves the same on SQLite and PostgreSQL (store_engine runs each test on both)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db import current_revision, session_scope
from core.models import (
    ApiKey,
    Conversation,
    Event,
    Item,
    Message,
    Profile,
    Recommendation,
    User,
)


def _seed(s: Session) -> None:
    s.add_all(
        [User(id="u1"), User(id="u2"), Item(id="i1", name="Cafe", category="Coffee Shop", lat=1, lon=2)]
    )
    s.flush()
    t = datetime(2012, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-4)))
    s.add_all(
        [
            Event(id="e1", user_id="u1", item_id="i1", kind="checkin", ts=t, tz_offset_min=-240),
            Event(id="e2", user_id="u2", item_id="i1", kind="checkin", ts=t, tz_offset_min=-240),
        ]
    )
    s.add(Profile(user_id="u1", version=1, miner_version="t", n_events=1, facts=[{"id": "f"}], text="x"))
    conv = Conversation(id="c1", user_id="u1")
    s.add(conv)
    s.flush()
    s.add(Message(conversation_id="c1", role="user", content="hi"))
    s.add(Recommendation(id="r1", user_id="u1", request={}, ranker="heuristic", conversation_id="c1"))
    s.add(ApiKey(key_hash="h" * 64, prefix="ck_x", role="user", user_id="u1"))


def test_schema_is_at_head(store_engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    from core.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    assert current_revision(store_engine) == head


def test_times_round_trip_as_utc(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as s:
        _seed(s)
    with session_scope(session_factory) as s:
        ev = s.get(Event, "e1")
        assert ev is not None
        assert ev.ts.tzinfo is not None and ev.ts.utcoffset() == timedelta(0)
        assert ev.ts == datetime(2012, 5, 1, 16, 30, tzinfo=UTC)


def test_naive_datetime_is_refused(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(session_factory) as s:
        s.add(User(id="u9"))
        s.flush()
        s.add(Event(id="e9", user_id="u9", kind="view", ts=datetime(2012, 1, 1)))
        s.flush()


def test_deleting_a_user_removes_all_their_data(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as s:
        _seed(s)
    with session_scope(session_factory) as s:
        s.delete(s.get(User, "u1"))
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.user_id == "u1")) == 0
        assert s.scalar(select(func.count()).select_from(Profile)) == 0
        assert s.scalar(select(func.count()).select_from(Conversation)) == 0
        assert s.scalar(select(func.count()).select_from(Message)) == 0
        assert s.scalar(select(func.count()).select_from(Recommendation)) == 0
        # other users and shared items stay
        assert s.get(Event, "e2") is not None
        assert s.get(Item, "i1") is not None


def test_profile_versions_are_unique_per_user(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as s:
        _seed(s)
    with pytest.raises(IntegrityError), session_scope(session_factory) as s:
        s.add(Profile(user_id="u1", version=1, miner_version="t", n_events=1, facts=[], text=""))


def test_failed_transaction_leaves_nothing(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), session_scope(session_factory) as s:
        s.add(User(id="ghost"))
        s.flush()
        raise RuntimeError("crash")
    with session_scope(session_factory) as s:
        assert s.get(User, "ghost") is None


def test_json_with_nan_stores_on_both_stores(session_factory: sessionmaker[Session]) -> None:
    """A trace with a NaN (a place without coordinates) was refused by PostgreSQL's JSON and lost;
    non-finite numbers are stored as null on both stores (found by tests/integration/test_store_faults.py)."""
    with session_scope(session_factory) as s:
        s.add(User(id="u1"))
        s.flush()
        s.add(
            Recommendation(
                id="r-nan",
                user_id="u1",
                request={"k": 5},
                ranker="heuristic",
                candidates=[
                    {"item_id": "i1", "features": {"distance_km": float("nan"), "x": float("inf"), "y": 1.5}}
                ],
            )
        )
    with session_factory() as s:
        rec = s.get(Recommendation, "r-nan")
        assert rec is not None
        assert rec.candidates == [{"item_id": "i1", "features": {"distance_km": None, "x": None, "y": 1.5}}]
