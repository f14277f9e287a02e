"""Candidates from the sources, features for those only: the same features and the same pool as
scoring the whole catalog (where the bound proves it), at a fraction of the places scored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import columns as C
from domains.places import PLACES
from retrieval.candidate_pool import DEPTH, CandidatePool
from retrieval.candidate_pool import candidate_pool as _pool
from retrieval.catalog_stats import CatalogStats
from retrieval.query import Query, QueryTime
from retrieval.sparse_vector import SparseVector
from retrieval.training import pool_of
from retrieval.user_history import UserHistory

POOL = 40
PLAN = PLACES.retrieval_plan()
FSET = PLAN.features
COL = FSET.col
heuristic_score = FSET.heuristic


def build_stats(ev: pd.DataFrame, items: pd.DataFrame) -> CatalogStats:
    stats = CatalogStats.build(ev, items)
    FSET.build_parts(stats, ev, items)
    return stats.warm()


def query_vectors(  # type: ignore[no-untyped-def]
    stats, uh, t_h, hour, weekend, where=None, weekday=None
) -> Query:
    args = {"lat": where[0], "lon": where[1]} if where is not None else {}
    return FSET.query(stats, uh, QueryTime(t_h, hour, weekend, weekday, True), args)


def query_features(stats, uh, *args):  # type: ignore[no-untyped-def]
    return FSET.every_item(stats, query_vectors(stats, uh, *args))


def features_at(stats: CatalogStats, q: Query, rows: np.ndarray) -> np.ndarray:
    return FSET.at(stats, q, rows)


def candidate_pool(  # type: ignore[no-untyped-def]
    stats, q, allowed, pool_size, extra=None, depth=DEPTH
) -> CandidatePool:
    return _pool(stats, q, FSET, PLAN.source_plan(None, depth), allowed, pool_size, extra)


@pytest.fixture(scope="module")
def city() -> tuple[CatalogStats, dict[str, UserHistory]]:
    """3,000 places in neighbourhoods with Zipf popularity; 150 users who revisit places near home
    and sometimes go anywhere."""
    rng = np.random.default_rng(7)
    n, hoods = 3000, 30
    hood = rng.integers(0, hoods, n)
    lat = 40.6 + 0.3 * rng.random(hoods)[hood] + rng.normal(0, 0.004, n)
    lon = -74.1 + 0.3 * rng.random(hoods)[hood] + rng.normal(0, 0.004, n)
    weight = 1 / np.arange(1, n + 1) ** 0.9
    weight /= weight.sum()
    rows = []
    start = datetime(2012, 4, 2, tzinfo=UTC)
    for u in range(150):
        home = rng.integers(hoods)
        near = np.flatnonzero(hood == home)
        favourites = rng.choice(near, size=min(6, len(near)), replace=False)
        t = start + timedelta(hours=int(rng.integers(0, 48)))
        for _ in range(int(rng.integers(5, 60))):
            p = int(rng.choice(favourites)) if rng.random() < 0.7 else int(rng.choice(n, p=weight))
            rows.append((f"u{u}", f"p{p}", t, lat[p], lon[p]))
            t += timedelta(hours=float(rng.exponential(10)))
    ev = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME, C.LAT, C.LON])
    ev[C.TIME] = pd.to_datetime(ev[C.TIME], utc=True)
    ev[C.TZ_OFFSET] = -240
    items = pd.DataFrame({"item_id": [f"p{i}" for i in range(n)], "lat": lat, "lon": lon})
    stats = build_stats(ev, items)
    users = {str(u): UserHistory.from_frame(g, stats) for u, g in ev.groupby(C.USER)}
    return stats, users


def _queries(city: tuple[CatalogStats, dict[str, UserHistory]], n: int = 40):  # type: ignore[no-untyped-def]
    stats, users = city
    rng = np.random.default_rng(1)
    names = sorted(users)
    for i in range(n):
        uh = users[names[int(rng.integers(len(names)))]]
        where = None if i % 3 else (40.6 + 0.3 * float(rng.random()), -74.1 + 0.3 * float(rng.random()))
        args = (float(uh.t_h[-1]) + 2.0, float(rng.uniform(0, 24)), bool(i % 2), where, i % 7)
        allowed = stats.known.copy()
        allowed[uh.idx[uh.idx >= 0]] = True
        yield uh, args, allowed


def test_a_places_features_do_not_depend_on_which_other_places_are_scored(city) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    rng = np.random.default_rng(2)
    for uh, args, _ in _queries(city, 10):
        whole = query_features(stats, uh, *args)
        q = query_vectors(stats, uh, *args)
        rows = np.sort(rng.choice(stats.n, size=200, replace=False))
        assert np.array_equal(features_at(stats, q, rows), whole[rows])


def test_the_pool_is_the_whole_catalogs_where_the_bound_proves_it(city) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    proven = 0
    for uh, args, allowed in _queries(city):
        q = query_vectors(stats, uh, *args)
        whole = query_features(stats, uh, *args)
        expected = pool_of(heuristic_score(whole), allowed, POOL)
        cp = candidate_pool(stats, q, allowed, POOL, depth=128)
        assert cp.scored < stats.n / 4  # the point: far fewer places than the catalog
        assert len(cp.rows) == POOL and np.array_equal(cp.features, whole[cp.rows])
        if cp.exact:
            proven += 1
            assert np.array_equal(cp.rows, expected)
        # reading every source to the catalog's size is always the whole catalog's pool
        full = candidate_pool(stats, q, allowed, POOL, depth=stats.n)
        assert np.array_equal(full.rows, expected)
    assert proven >= 30  # the bound is not vacuous on this city (38 of 40 when written)


def test_a_narrow_filter_scores_every_allowed_place(city) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    uh, args, allowed = next(iter(_queries(city, 1)))
    narrow = allowed & (np.arange(stats.n) % 37 == 0)  # ~80 places, none maybe among the sources
    q = query_vectors(stats, uh, *args)
    whole = query_features(stats, uh, *args)
    cp = candidate_pool(stats, q, narrow, POOL, depth=16)
    assert np.array_equal(cp.rows, pool_of(heuristic_score(whole), narrow, POOL))
    assert narrow[cp.rows].all()


def test_extra_rows_join_after_the_pool_with_their_features(city) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    uh, args, allowed = next(iter(_queries(city, 1)))
    q = query_vectors(stats, uh, *args)
    whole = query_features(stats, uh, *args)
    base = candidate_pool(stats, q, allowed, POOL, depth=64)
    outside = np.setdiff1d(np.flatnonzero(allowed), base.rows)[:5]
    not_allowed = np.flatnonzero(~allowed)[:3]
    cp = candidate_pool(stats, q, allowed, POOL, extra=np.concatenate([outside, not_allowed]), depth=64)
    assert np.array_equal(cp.rows[:POOL], base.rows) and cp.pool_size == POOL
    assert set(cp.rows[POOL:].tolist()) == set(outside.tolist())  # a filtered-out extra stays out
    assert np.array_equal(cp.features, whole[cp.rows])


def test_a_user_without_history_gets_nearby_and_popular_places(city) -> None:  # type: ignore[no-untyped-def]
    stats, _ = city
    empty = UserHistory.from_frame(pd.DataFrame(columns=[C.USER, C.ITEM, C.TIME]), stats)
    args = (375000.0, 12.0, False, (40.75, -73.95), 2)
    q = query_vectors(stats, empty, *args)
    whole = query_features(stats, empty, *args)
    cp = candidate_pool(stats, q, stats.known.copy(), POOL, depth=64)
    assert np.array_equal(cp.features, whole[cp.rows])
    if cp.exact:
        assert np.array_equal(cp.rows, pool_of(heuristic_score(whole), stats.known, POOL))


@pytest.mark.parametrize("seed", range(5))
def test_sparse_vector_reads_like_the_dense_vector(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    dense = np.zeros(n)
    nz = rng.choice(n, size=60, replace=False)
    dense[nz] = rng.choice([-2.0, 0.5, 1.0, 3.0], size=60)  # ties on purpose, and negatives
    sv = SparseVector.from_dense(dense)
    order = np.argsort(-dense, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    rows = rng.permutation(n)
    assert np.array_equal(sv.at(rows), dense[rows])
    assert np.array_equal(sv.ranks(rows), rank[rows])
    for k in (1, 10, 60, 200, n):
        assert np.array_equal(sv.top(k), order[:k])
    assert np.array_equal(SparseVector.empty(n).top(3), np.arange(3))


def test_novelty_and_anchor_features() -> None:
    """A user who went to a, a, b, a, c: 3 first visits of 5; a (3 visits) is the first anchor,
    so a place beside a is near an anchor and one 10 km away is not."""
    t0 = pd.Timestamp("2012-04-02 12:00", tz="UTC")
    seq = ["a", "a", "b", "a", "c"]
    pos = {
        "a": (40.70, -74.00),
        "b": (40.80, -73.90),
        "c": (40.75, -73.95),
        "d": (40.7001, -74.0),
        "e": (40.79, -74.0),
    }
    ev = pd.DataFrame(
        {
            C.USER: ["u"] * len(seq),
            C.ITEM: seq,
            C.TIME: [t0 + pd.Timedelta(hours=3 * i) for i in range(len(seq))],
            C.LAT: [pos[p][0] for p in seq],
            C.LON: [pos[p][1] for p in seq],
            C.TZ_OFFSET: -240,
        }
    )
    items = pd.DataFrame(
        {"item_id": list(pos), "lat": [v[0] for v in pos.values()], "lon": [v[1] for v in pos.values()]}
    )
    stats = build_stats(ev, items)
    uh = UserHistory.from_frame(ev, stats)
    col = COL
    f = query_features(stats, uh, t0.value / 3.6e12 + 20, 12.0, False)
    row = {p: f[int(stats.index_of(np.array([p]))[0])] for p in pos}
    assert row["d"][col["user_novelty_rate"]] == pytest.approx(3 / 5)
    assert row["d"][col["user_recent_novelty_rate"]] == pytest.approx(3 / 5)  # fewer than 20 check-ins
    assert np.expm1(row["d"][col["dist_anchor_km_log"]]) < 0.1  # 11 m from a
    assert 5 < np.expm1(row["e"][col["dist_anchor_km_log"]]) < 12  # ~10 km from a, b, c's nearest
    empty = query_features(stats, UserHistory.from_frame(ev.iloc[0:0], stats), 0.0, 12.0, False)
    assert np.all(empty[:, col["user_novelty_rate"]] == 0) and np.allclose(
        np.expm1(empty[:, col["dist_anchor_km_log"]]), 50
    )
