"""The in-memory recommender: routines recovered, cold start, filters, sources, no future leakage."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from core import columns as C
from tests.retrieval.conftest import fit, place_ctx, recommend

T = datetime(2012, 6, 4, 16, 0, tzinfo=UTC)  # a Monday, 12:00 local: cafe time


def test_routine_and_sources(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    hist = ev[ev[C.USER] == "u1"]
    out = recommend(rec, hist, place_ctx(time=T), k=5)
    assert out.ranker == "heuristic" and len(out.candidates) == 5
    top = out.candidates[0]
    assert top.item_id in {"p6", "p10"}  # u1's cafe or office
    assert "repeat" in top.sources
    assert all(c.sources for c in out.candidates)
    assert out.candidates[0].score >= out.candidates[-1].score


def test_cold_start_and_unknown_user(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    out = recommend(rec, ev.iloc[0:0], place_ctx(time=T, lat=40.70, lon=-74.00), k=3)
    assert len(out.candidates) == 3
    assert out.candidates[0].item_id == "p0"  # the place at the request location
    assert "nearby" in out.candidates[0].sources
    out = recommend(rec, ev.iloc[0:0], place_ctx(time=T), k=3)
    assert len(out.candidates) == 3  # popularity alone


def test_filters(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    hist = ev[ev[C.USER] == "u1"]
    visited = set(hist[C.ITEM])
    ctx = place_ctx(
        time=T,
        lat=40.72,
        lon=-73.97,
        exclude_categories=("coffee",),
        max_distance_km=2.5,
        exclude_visited=True,
    )
    out = recommend(rec, hist, ctx, k=50)
    assert out.candidates
    for c in out.candidates:
        assert c.category != "Coffee Shop"
        assert c.item_id not in visited
        assert c.features["distance_km"] <= 2.5
    only = recommend(rec, hist, place_ctx(time=T, include_categories=("Museum",)), k=50)
    assert {c.category for c in only.candidates} == {"Museum"}
    none = recommend(rec, hist, place_ctx(time=T, include_categories=("Opera",)), k=5)
    assert none.candidates == []


def test_extra_sources_are_merged_with_provenance(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    extra_items = pd.concat(
        [
            items,
            pd.DataFrame(
                [{"item_id": "new", "name": "New place", "category": "Museum", "lat": 40.7, "lon": -74.0}]
            ),
        ]
    )
    rec = fit(ev, extra_items, ranker="heuristic")
    out = recommend(
        rec,
        ev[ev[C.USER] == "u1"],
        place_ctx(time=T),
        k=100,
        extra_sources={"embedding": ["new", "p6"]},
        extra_features={"new": {"emb_sim": 0.9}},
    )
    by_id = {c.item_id: c for c in out.candidates}
    assert "embedding" in by_id["new"].sources and by_id["new"].features["emb_sim"] == 0.9
    assert {"embedding", "repeat"} <= set(by_id["p6"].sources)


def test_future_events_do_not_change_features(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Leakage guard: what the caller passes as history is all the features see."""
    ev, items = small_world
    rec = fit(ev[ev[C.TIME] < T], items, ranker="heuristic")
    hist = ev[(ev[C.USER] == "u2") & (ev[C.TIME] < T)]
    a = recommend(rec, hist, place_ctx(time=T), k=10)
    b = recommend(rec, hist.copy(), place_ctx(time=T), k=10)
    assert [c.item_id for c in a.candidates] == [c.item_id for c in b.candidates]
    assert [c.features for c in a.candidates] == [c.features for c in b.candidates]


def test_kind_filter_and_which_filter_emptied_the_list(
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    hist = ev[ev[C.USER] == "u1"]
    out = recommend(rec, hist, place_ctx(time=T, include_kinds=("park",)), k=50)
    assert out.candidates and {c.category for c in out.candidates} == {"Park"}
    assert out.emptied_by is None
    none = recommend(rec, hist, place_ctx(time=T, include_kinds=("Opera House",)), k=5)
    assert not none.candidates and none.emptied_by == {
        "filter": "include_kinds",
        "allowed_before": rec.stats.n,
    }
    far = recommend(rec, hist, place_ctx(time=T, lat=10.0, lon=10.0, max_distance_km=1.0), k=5)
    assert not far.candidates and far.emptied_by and far.emptied_by["filter"] == "max_distance_km"


def test_add_events_updates_popularity_and_catalog(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    n0 = rec.stats.n
    new = ev.iloc[:3].copy()
    new[C.ITEM] = "brand-new"
    new[C.ITEM_NAME] = "Brand new place"
    new[C.TIME] = new[C.TIME] + pd.Timedelta(days=400)
    rec.add_events(new)
    assert rec.stats.n == n0 + 1
    i = int(rec.stats.index_of(["brand-new"])[0])
    assert rec.stats.popularity[i] == 3 and rec.stats.known[i] and rec.stats.hour_hist[i].sum() == 3
    assert rec.names[i] == "Brand new place"
    # the new place is now rankable for a user who went there
    hist = pd.concat([ev[ev[C.USER] == new[C.USER].iloc[0]], new], ignore_index=True)
    out = recommend(rec, hist, place_ctx(time=new[C.TIME].max()), k=100)
    assert "brand-new" in {c.item_id for c in out.candidates}


def test_cached_user_history_follows_the_frame_it_came_from(
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    hist = ev[ev[C.USER] == "u1"]
    first = recommend(rec, hist, place_ctx(time=T), k=5)
    again = recommend(rec, hist, place_ctx(time=T), k=5)  # served from the cache
    assert [c.item_id for c in again.candidates] == [c.item_id for c in first.candidates]
    # A new frame for the same user (what the service does on new events) is not served stale:
    # a user whose history is now only u2's routine gets u2's places.
    other = ev[ev[C.USER] == "u2"].assign(**{C.USER: "u1"})
    moved = recommend(rec, other, place_ctx(time=T), k=5)
    fresh = recommend(fit(ev, items, ranker="heuristic"), other, place_ctx(time=T), k=5)
    assert [c.item_id for c in moved.candidates] == [c.item_id for c in fresh.candidates]
    assert [c.item_id for c in moved.candidates] != [c.item_id for c in first.candidates]


def test_a_thin_kind_list_is_filled_with_related_kinds_then_from_further_away(
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Museums within 2.5 km of (40.70, -74.00) are two: the list holds them first, then the
    related kinds the request names, then places a step further away; ``filled`` says how. An
    API-style request (no widen_if_thin, no related kinds) keeps its filter strict."""
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    hist = ev[ev[C.USER] == "u1"]
    where = {"lat": 40.70, "lon": -74.00, "max_distance_km": 2.5}
    strict = recommend(rec, hist, place_ctx(time=T, include_kinds=("Museum",), **where), k=5)
    wished = len(strict.candidates)
    assert 0 < wished < 5 and {c.category for c in strict.candidates} == {"Museum"}
    assert strict.filled == [] and strict.wished == wished
    ctx = place_ctx(time=T, include_kinds=("Museum",), related_kinds=("Park",), widen_if_thin=True, **where)
    out = recommend(rec, hist, ctx, k=5)
    assert len(out.candidates) == 5 and out.wished == wished
    cats = [c.category for c in out.candidates]
    assert cats[:wished] == ["Museum"] * wished  # what was asked for comes first
    assert [c.item_id for c in out.candidates[:wished]] == [c.item_id for c in strict.candidates]
    steps = [f["step"] for f in out.filled]
    assert steps[0] == "related_kinds" and out.filled[0]["kinds"] == ["Park"]
    n_related = out.filled[0]["added"]
    assert cats[wished : wished + n_related] == ["Park"] * n_related
    assert all("fill:related_kinds" in c.sources for c in out.candidates[wished : wished + n_related])
    assert steps == ["related_kinds", "wider"]  # then from further away, of the same kinds only
    assert out.filled[-1]["words"] == "within 5 km"
    assert set(cats[wished + n_related :]) <= {"Museum", "Park"}
    assert max(c.features.get("distance_km", 0) for c in out.candidates) <= 5.0


def test_nothing_is_filled_in_when_nothing_fits_at_all(
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, items = small_world
    rec = fit(ev, items, ranker="heuristic")
    ctx = place_ctx(time=T, include_kinds=("Opera House",), related_kinds=(), widen_if_thin=True)
    out = recommend(rec, ev[ev[C.USER] == "u1"], ctx, k=5)
    assert out.candidates == [] and out.filled == [] and out.emptied_by["filter"] == "include_kinds"
