"""The serving state: built once, replaced whole on new events, followed by every worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.settings import Settings
from domains.places import PLACES as _PLACES
from retrieval.catalog_stats import CatalogStats
from retrieval.service import Retriever
from retrieval.state_follower import StateFollower
from retrieval.user_history import UserHistory, user_histories
from tests.retrieval.conftest import ask_retriever, place_ctx, store_events

PLACES_PLAN = _PLACES.retrieval_plan()

T = datetime(2012, 6, 4, 16, 0, tzinfo=UTC)


def _new_place_visit(user: str, item: str, when: datetime, eid: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                C.EVENT_ID: eid,
                C.USER: user,
                C.ITEM: item,
                C.KIND: "checkin",
                C.TIME: pd.Timestamp(when),
                C.TZ_OFFSET: -240,
                C.LAT: 40.75,
                C.LON: -73.99,
                C.TEXT: None,
                C.RATING: np.nan,
                C.CATEGORY: "Ramen Restaurant",
                C.ITEM_NAME: "Brand-new ramen",
            }
        ]
    )[C.EVENT_COLUMNS]


def test_user_histories_match_one_by_one_conversion(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    stats = CatalogStats.build(ev, items)
    together = user_histories(ev, stats)
    assert set(together) == set(ev[C.USER])
    for u, g in ev.groupby(C.USER):
        one = UserHistory.from_frame(g, stats)
        got = together[str(u)]
        for field in ("idx", "hour", "weekend", "t_h", "weekday"):
            np.testing.assert_array_equal(getattr(got, field), getattr(one, field))


def test_with_events_leaves_the_old_stats_untouched(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    stats = CatalogStats.build(ev, items)
    pop, n, trans_nnz = stats.popularity.copy(), stats.n, stats.trans.nnz
    new = _new_place_visit("u1", "fresh", T, "x1")
    grown = stats.with_events(pd.concat([ev[ev[C.USER] == "u1"].tail(1), new]))
    assert grown.n == n + 1 and grown.index_of(np.array(["fresh"]))[0] == n
    assert grown.popularity[n] == 1 and grown.trans.shape == (n + 1, n + 1)
    # the state requests may still be reading is exactly as it was
    assert stats.n == n and stats.trans.nnz == trans_nnz and (stats.popularity == pop).all()
    assert stats.index_of(np.array(["fresh"]))[0] == -1


def test_a_refresh_serves_new_events_and_new_items_without_double_counting(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, _ = small_world
    store_events(sqlite_session_factory, ev)
    r = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, load_index=False, grounding=False)
    before = r.state
    last = ev[ev[C.USER] == "u2"][C.TIME].max()
    store_events(sqlite_session_factory, _new_place_visit("u2", "fresh", last + timedelta(hours=1), "x1"))
    with sqlite_session_factory() as s:
        r.refresh_users(s, ["u2"])
        r.refresh_users(s, ["u2"])  # the same events again: nothing counted twice
    st = r.state
    assert st is not before and before.recommender.stats.index_of(np.array(["fresh"]))[0] == -1
    i = st.recommender.stats.index_of(np.array(["fresh"]))[0]
    assert i >= 0 and st.recommender.stats.popularity[i] == 1
    assert r.kind_of("fresh") == "Ramen Restaurant" and r.name_of("fresh") == "Brand-new ramen"
    old_item = str(ev[C.ITEM].iloc[0])
    known = before.item_names().kind.get(old_item)
    assert known and r.kind_of(old_item) == known  # the earlier items kept their names
    assert st.with_history("u2", st.history("u2")).names is st.names  # carried, not rebuilt per query
    ctx = place_ctx(time=last + timedelta(hours=2), lat=40.75, lon=-73.99)
    top = ask_retriever(r, "u2", ctx, k=10).candidates
    assert "fresh" in [c.item_id for c in top]
    fresh = next(c for c in top if c.item_id == "fresh")
    assert "repeat" in fresh.sources and fresh.name == "Brand-new ramen"


def test_a_second_worker_follows_writes_made_through_the_first(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, _ = small_world
    store_events(sqlite_session_factory, ev[ev[C.USER] != "u5"])
    other = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, load_index=False, grounding=False)
    follower = StateFollower(other, sqlite_session_factory, max_users=10)
    assert not follower.catch_up() and other.history("u5").empty
    store_events(sqlite_session_factory, ev[ev[C.USER] == "u5"])  # through "another worker"
    assert follower.catch_up()
    assert len(other.history("u5")) == int((ev[C.USER] == "u5").sum())
    assert other.version > 0 and follower.status()["version"] == other.version
    assert not follower.catch_up()  # nothing new: the state is not rebuilt
    # a bulk change (more users than max_users) rebuilds the whole state
    store_events(
        sqlite_session_factory, ev.assign(**{C.USER: "b" + ev[C.USER], C.EVENT_ID: "b" + ev[C.EVENT_ID]})
    )
    assert follower.catch_up()
    assert len(other.histories) == 2 * ev[C.USER].nunique()


def test_concurrent_writers_share_one_catch_up(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writers that each wait for their own change to be served coalesce: the ones whose change a
    pass already folded in return without a pass of their own."""
    import threading
    import time

    from core.state_changes import latest_seq

    ev, _ = small_world
    keep = ev[C.USER].isin(["u0", "u1"])
    store_events(sqlite_session_factory, ev[keep])
    r = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, load_index=False, grounding=False)
    follower = StateFollower(r, sqlite_session_factory, max_users=100)
    passes: list[int] = []
    real = r.refresh_users

    def slow_refresh(session: Session, users: Any, version: int | None = None) -> None:
        passes.append(len(list(users)))
        time.sleep(0.2)  # a pass takes a while: the other writers queue behind it
        real(session, users, version)

    monkeypatch.setattr(r, "refresh_users", slow_refresh)
    users = [u for u in ev[C.USER].unique() if u not in ("u0", "u1")][:6]
    for u in users:  # six writes, committed before anyone catches up
        store_events(sqlite_session_factory, ev[ev[C.USER] == u])
    with sqlite_session_factory() as s:
        seq = latest_seq(s)
    done: list[bool] = []
    threads = [threading.Thread(target=lambda: done.append(follower.catch_up_to(seq))) for _ in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert done == [True] * len(users) and r.version >= seq
    assert len(passes) == 1 and passes[0] == len(users)  # one pass folded all six
    assert all(len(r.history(u)) for u in users)
