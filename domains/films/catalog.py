"""The films part of the catalog statistics (domains/films/signals.py), built from the history:
the ratings in time order with their pair log, each film's year, genres and title; grown with new
ratings; and one query's view of it (the person's ratings before the query time)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core import columns as C
from core.kinds import ItemKinds
from domains.films.formats import title_year
from domains.films.signals import SEQ, FilmSignals, FilmView
from domains.films.titles import TitleIndex
from retrieval.catalog_stats import CatalogStats
from retrieval.timeline import Timeline
from retrieval.user_history import UserHistory


def _names_and_kinds(
    stats: CatalogStats, items: pd.DataFrame | None, history: pd.DataFrame
) -> tuple[list, list]:
    names: dict[str, Any] = {}
    kinds: dict[str, Any] = {}
    if items is not None and len(items):
        ids = items["item_id"].astype(str)
        names.update(zip(ids, items.get("name", pd.Series([None] * len(items))), strict=True))
        col = "kinds" if "kinds" in items else "category"
        kinds.update(zip(ids, items[col], strict=True))
    h = history.dropna(subset=[C.ITEM])
    if C.ITEM_NAME in h:
        for i, n in zip(h[C.ITEM].astype(str), h[C.ITEM_NAME], strict=True):
            names.setdefault(i, n)
    if C.CATEGORY in h:
        for i, c in zip(h[C.ITEM].astype(str), h[C.CATEGORY], strict=True):
            kinds.setdefault(i, c)
    return [names.get(str(i)) for i in stats.item_ids], [kinds.get(str(i)) for i in stats.item_ids]


def _ratings_only(history: pd.DataFrame) -> pd.DataFrame:
    h = history.dropna(subset=[C.ITEM])
    if C.RATING in h:
        h = h[pd.to_numeric(h[C.RATING], errors="coerce").notna()]
    return h


def build_signals(stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> FilmSignals:
    names, kinds = _names_and_kinds(stats, items, history)
    h = _ratings_only(history)
    users = pd.Index(pd.unique(h[C.USER].astype(str)))
    ts = pd.to_datetime(h[C.TIME], utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    rating = (
        pd.to_numeric(h[C.RATING], errors="coerce").to_numpy(dtype=float)
        if C.RATING in h
        else np.full(len(h), np.nan)
    )
    timeline = Timeline(
        stats.index_of(h[C.ITEM].astype(str).to_numpy()),
        users.get_indexer(h[C.USER].astype(str)),
        ts,
        rating,
        stats.n,
        len(users),
        pairs=(SEQ,),
    )
    g = ItemKinds.of(kinds)
    year = np.array([title_year(str(n or "")) or np.nan for n in names], dtype=float)
    return FilmSignals(
        timeline,
        year,
        g.matrix.tocsr().astype(np.float64),
        g.names,
        {u: i for i, u in enumerate(users)},
        TitleIndex(names),
    )


def grow_signals(old: FilmSignals, stats: CatalogStats, events: pd.DataFrame) -> FilmSignals:
    h = _ratings_only(events)
    users = dict(old.user_index)
    for u in pd.unique(h[C.USER].astype(str)):
        users.setdefault(u, len(users))
    tl = old.timeline
    ts = pd.to_datetime(h[C.TIME], utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    rating = (
        pd.to_numeric(h[C.RATING], errors="coerce").to_numpy(dtype=float)
        if C.RATING in h
        else np.full(len(h), np.nan)
    )
    timeline = Timeline(
        np.r_[tl.item, stats.index_of(h[C.ITEM].astype(str).to_numpy())],
        np.r_[tl.user, [users[u] for u in h[C.USER].astype(str)]],
        np.r_[tl.ts, ts],
        np.r_[tl.rating, rating],
        stats.n,
        len(users),
        pairs=(SEQ,),
    )
    k = stats.n - old.n
    year, genres = old.year, old.genres
    if k > 0:
        names, kinds = _names_and_kinds(stats, None, events)
        year = np.r_[old.year, [title_year(str(n or "")) or np.nan for n in names[old.n :]]]
        g = ItemKinds.of(kinds[old.n :])
        extra = np.zeros((k, len(old.genre_names)))
        for j, name in enumerate(g.names):
            if name in old.genre_names:
                extra[:, old.genre_names.index(name)] = g.matrix.tocsc()[:, j].toarray().ravel()
        genres = sp.vstack([old.genres, sp.csr_matrix(extra)]).tocsr()
    names, _ = _names_and_kinds(stats, None, events)
    titles = TitleIndex([*old.titles.titles, *names[old.n :]])
    return FilmSignals(timeline, year, genres, old.genre_names, users, titles)


def view(signals: FilmSignals, user: UserHistory, t_s: float) -> FilmView:
    rated = user.idx >= 0
    if user.rating is not None:
        rated &= ~np.isnan(user.rating)
    items = user.idx[rated]
    had = np.zeros(signals.n, dtype=bool)
    had[items] = True
    return FilmView(
        signals,
        t_s,
        items,
        user.rating[rated] if user.rating is not None else np.full(len(items), np.nan),
        user.t_h[rated] * 3600.0,
        signals.user_index.get(user.user_id) if user.user_id is not None else None,
        had,
    )
