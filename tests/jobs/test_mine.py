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
    assert out == {"mined": 2, "new_versions": 2, "skipped": 0, "failed": {}}
    # nothing changed: no pointless new versions
    assert mine_users(session_factory, data_dir=tmp_path, workers=1)["new_versions"] == 0
    _add_events(session_factory, "a", 30, 5)
    out = mine_users(session_factory, ["a"], data_dir=tmp_path)
    assert out == {"mined": 1, "new_versions": 1, "skipped": 0, "failed": {}}
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


def test_an_interrupted_run_resumes_with_the_users_left(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.mine

    for u in "abcdef":
        _add_events(session_factory, u, 0, 12)
    monkeypatch.setattr(jobs.mine, "CHUNK_USERS", 2)
    seen: list[int] = []

    def stop_after_two_batches(n: int) -> None:
        seen.append(n)
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the second batch was stored

    with pytest.raises(KeyboardInterrupt):
        mine_users(session_factory, data_dir=tmp_path, workers=1, progress=stop_after_two_batches)
    with session_factory() as s:
        assert sum(latest_profile(s, u) is not None for u in "abcdef") == 4
    out = mine_users(session_factory, data_dir=tmp_path, workers=1)
    assert out["skipped"] == 4 and out["mined"] == 2 and out["new_versions"] == 2
    with session_factory() as s:
        assert all([v["version"] for v in profile_versions(s, u)] == [1] for u in "abcdef")
    # finished: the journal is gone, so the next run mines everyone again (and writes nothing new)
    assert mine_users(session_factory, data_dir=tmp_path, workers=1) == {
        "mined": 6, "new_versions": 0, "skipped": 0, "failed": {}
    }  # fmt: skip


def test_a_user_whose_mining_fails_fails_alone(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.mine

    for u in ("good", "bad", "fine"):
        _add_events(session_factory, u, 0, 12)
    real = jobs.mine.build_profile

    def corrupt_for_bad(df, user_id, **kw):  # type: ignore[no-untyped-def]
        if user_id == "bad":
            raise ValueError("events out of order beyond repair")
        return real(df, user_id, **kw)

    monkeypatch.setattr(jobs.mine, "build_profile", corrupt_for_bad)
    out = mine_users(session_factory, data_dir=tmp_path, workers=1)
    assert out["mined"] == 2 and set(out["failed"]) == {"bad"} and "out of order" in out["failed"]["bad"]
    with session_factory() as s:
        assert latest_profile(s, "good") is not None and latest_profile(s, "bad") is None


def test_ray_engine_refuses_sqlite_for_a_cluster() -> None:
    from core.errors import InvalidInputError
    from jobs.engines import check_store_for_ray

    with pytest.raises(InvalidInputError, match="PostgreSQL"):
        check_store_for_ray("sqlite:////tmp/x.db", "10.0.0.1:6379")
    check_store_for_ray("postgresql+psycopg://u@h/db", "10.0.0.1:6379")  # fine
    check_store_for_ray("sqlite:////tmp/x.db", None)  # a local runtime: allowed, with a warning


def test_an_unreachable_ray_cluster_is_one_clear_error() -> None:
    from core.errors import NotReadyError
    from jobs.engines import start_ray

    with pytest.raises(NotReadyError, match="cannot reach the Ray cluster at 127.0.0.1:1|needs Ray"):
        start_ray("127.0.0.1:1")


def test_hours_of_data_without_a_zone_are_said_to_be_utc(
    sqlite_session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Events whose times carry no zone: the profile's facts and text word hours as UTC, never as
    the person's local time (ingest records the store's clock, mining reads it)."""
    from core.ingest import ingest_file
    from domains import formats
    from retrieval.profile_store import latest_profile

    rows = [f"u,i{i % 5},2024-05-{1 + i // 2:02d}T{8 + i % 2:02d}:10:00" for i in range(40)]
    f = tmp_path / "events.csv"
    f.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    assert ingest_file(f, sqlite_session_factory, formats=formats()).inserted == 40
    mine_users(sqlite_session_factory, data_dir=tmp_path, workers=1)
    with sqlite_session_factory() as s:
        p = latest_profile(s, "u")
    assert p is not None
    peak = p.fact("rhythm.peak_hours")
    assert peak is not None and "UTC" in peak.statement and "local" not in peak.statement
    assert "Most active around 08:00 UTC" in p.text or "Most active around 09:00 UTC" in p.text, p.text
    assert "local time" not in p.text
