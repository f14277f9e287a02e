"""A small synthetic world for retrieval tests: a grid of places, users with routines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.ingest import write_events
from core.ingest.reading import ATTRS, LINE
from retrieval.embedder import SentenceTransformerEmbedder


def world(n_users: int = 30, days: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items on a 0.01° grid with categories; each user has a home, a cafe routine and random trips."""
    rng = np.random.default_rng(seed)
    cats = ["Coffee Shop", "Bar", "Museum", "Park", "Office", "Gym"]
    items = pd.DataFrame(
        {
            "item_id": [f"p{i}" for i in range(60)],
            "name": [f"{cats[i % 6]} #{i}" for i in range(60)],
            "category": [cats[i % 6] for i in range(60)],
            "lat": [40.70 + 0.01 * (i // 10) for i in range(60)],
            "lon": [-74.00 + 0.01 * (i % 10) for i in range(60)],
        }
    )
    rows = []
    start = datetime(2012, 4, 2, tzinfo=UTC)
    for u in range(n_users):
        cafe, office, bar = f"p{(u * 6) % 60}", f"p{(u * 6 + 4) % 60}", f"p{(u * 6 + 1) % 60}"
        for d in range(days):
            day = start + timedelta(days=d)
            if day.weekday() < 5:
                rows.append((f"u{u}", cafe, day + timedelta(hours=12)))
                rows.append((f"u{u}", office, day + timedelta(hours=13)))
            if rng.random() < 0.3:
                rows.append((f"u{u}", bar, day + timedelta(hours=23)))
            if rng.random() < 0.2:
                rows.append((f"u{u}", f"p{rng.integers(60)}", day + timedelta(hours=18)))
    ev = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME])
    ev[C.TIME] = pd.to_datetime(ev[C.TIME], utc=True)
    ev = ev.merge(items.rename(columns={"item_id": C.ITEM, "name": C.ITEM_NAME}), on=C.ITEM, how="left")
    ev = ev.rename(columns={"lat": C.LAT, "lon": C.LON})
    ev[C.TZ_OFFSET] = -240
    ev[C.KIND] = "checkin"
    ev[C.EVENT_ID] = [f"e{i}" for i in range(len(ev))]
    ev[C.TEXT] = None
    ev[C.RATING] = np.nan
    return ev.sort_values([C.USER, C.TIME]).reset_index(drop=True)[C.EVENT_COLUMNS], items


def store_events(factory: sessionmaker[Session], ev: pd.DataFrame) -> None:
    """Write an events frame (``world``'s shape) through the product's ingest writer."""
    df = ev.copy()
    df[ATTRS] = None
    df[LINE] = range(len(df))
    write_events(factory, df)


@pytest.fixture
def small_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return world()


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[SentenceTransformerEmbedder]:
    """The packaged all-MiniLM-L6-v2, loaded once per test run (~8 s)."""
    yield SentenceTransformerEmbedder()


# -- the places domain's retrieval, as the tests call it -----------------------------------------


def places_plan():  # type: ignore[no-untyped-def]
    from domains.places import PLACES

    return PLACES.retrieval_plan()


def fit(ev: pd.DataFrame, items: pd.DataFrame, **kw):  # type: ignore[no-untyped-def]
    """``Recommender.fit`` with the places plan."""
    from retrieval.recommender import Recommender

    return Recommender.fit(ev, items, places_plan(), **kw)


def place_ctx(time: datetime, *, lat=None, lon=None, max_distance_km=None, **kw):  # type: ignore[no-untyped-def]
    """A request whose whereabouts and distance are the places domain's arguments."""
    from domains.places import PLACES
    from retrieval.types import RequestContext

    return RequestContext(
        time=time, args=PLACES.request_args(lat=lat, lon=lon, max_distance_km=max_distance_km), **kw
    )


def recommend(rec, hist: pd.DataFrame, ctx, k: int = 10, **kw):  # type: ignore[no-untyped-def]
    """One person's recommendation from their history frame (offset: their latest event's)."""
    from retrieval.recommender import Ask

    off = int(hist[C.TZ_OFFSET].iloc[-1]) if len(hist) and C.TZ_OFFSET in hist else 0
    return rec.recommend(Ask(ctx, k, rec.history_of(hist), off, **kw))


def ask_retriever(r, user: str, ctx, k: int = 10, profile=None, **kw):  # type: ignore[no-untyped-def]
    return r.recommend(r.person(user, ctx.time), ctx, k, profile, **kw)
