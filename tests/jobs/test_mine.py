"""Profiles stored versioned (SQLite and PostgreSQL); incremental re-mining of one user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFoundError
from core.models import Event, Item, User
from jobs.mine import mine_users
from retrieval.profile_store import latest_profile, profile_versions


def _add_events(factory: sessionmaker[Session], user: str, start: int, n: int) -> None:
    with factory() as s:
        if s.get(User, user) is None:
            s.add(User(id=user))
        for i in range(start, start + n):
            iid = f"p{i % 4}"
            if s.get(Item, iid) is None:
                s.add(
                    Item(
                        id=iid, category="Cafe" if i % 2 else "Office", lat=40.7 + (i % 4) * 0.001, lon=-74.0
                    )
                )
                s.flush()
            s.add(
                Event(
                    id=f"{user}-{i}",
                    user_id=user,
                    item_id=iid,
                    kind="checkin",
                    ts=datetime(2012, 5, 1, 8, tzinfo=UTC) + timedelta(hours=13 * i),
                    tz_offset_min=-240,
                )
            )
        s.commit()


def test_versions_and_incremental(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    _add_events(session_factory, "a", 0, 30)
    _add_events(session_factory, "b", 0, 10)
    out = mine_users(session_factory, data_dir=tmp_path, workers=1)
    assert out == {"mined": 2, "new_versions": 2}
    # nothing changed: no pointless new versions
    assert mine_users(session_factory, data_dir=tmp_path, workers=1)["new_versions"] == 0
    _add_events(session_factory, "a", 30, 5)
    out = mine_users(session_factory, ["a"], data_dir=tmp_path)
    assert out == {"mined": 1, "new_versions": 1}
    with session_factory() as s:
        pa = latest_profile(s, "a")
        assert pa is not None and pa.n_events == 35
        assert [v["version"] for v in profile_versions(s, "a")] == [1, 2]
        assert [v["version"] for v in profile_versions(s, "b")] == [1]
        assert pa.fact("data.summary") is not None and pa.text
        assert latest_profile(s, "nobody") is None


def test_unknown_user_is_an_error(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError):
        mine_users(session_factory, ["ghost"])
