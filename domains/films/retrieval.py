"""How films are retrieved and ranked: the neutral behaviour features and sources, plus what only
films have (genres the person rates highly, release years, how people rate the film), and the
decade filter. A film already rated is never shown (the domain's default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core import columns as C
from core.kinds import ItemKinds
from domains.films.formats import title_year
from retrieval.catalog_stats import CatalogStats
from retrieval.features import BEHAVIOUR, Columns, FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.query import Query, QueryVectors
from retrieval.sources import NEUTRAL_SOURCES
from retrieval.types import RequestContext
from retrieval.user_history import UserHistory

FILM = "film"
SECONDS_PER_YEAR = 365.25 * 86400


@dataclass
class FilmCatalog:
    """Per catalog index: release year (NaN unknown), genres (items x genres), mean rating and count."""

    year: np.ndarray
    genres: sp.csr_matrix
    genre_names: list[str]
    mean_rating: np.ndarray
    n_ratings: np.ndarray


@dataclass(frozen=True)
class FilmQuery:
    affinity: np.ndarray  # per genre: how much more than usual the person rates it (stars)
    mean_year: float
    query_year: float


def _years(stats: CatalogStats, items: pd.DataFrame | None, history: pd.DataFrame) -> np.ndarray:
    names: dict[str, Any] = {}
    if items is not None and len(items):
        names.update(
            zip(items["item_id"].astype(str), items.get("name", pd.Series([None] * len(items))), strict=True)
        )
    if C.ITEM_NAME in history:
        h = history.dropna(subset=[C.ITEM])
        names.update(zip(h[C.ITEM].astype(str), h[C.ITEM_NAME], strict=True))
    return np.array([title_year(str(names.get(str(i)) or "")) or np.nan for i in stats.item_ids], dtype=float)


class FilmGroup:
    name = FILM
    columns = (
        "genre_affinity",
        "genre_match_last",
        "film_age_years",
        "year_gap_user",
        "item_mean_rating",
        "item_ratings_log",
    )

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> FilmCatalog:
        kinds_of: dict[str, Any] = {}
        if items is not None and len(items):
            col = "kinds" if "kinds" in items else "category"
            kinds_of.update(zip(items["item_id"].astype(str), items[col], strict=True))
        h = history.dropna(subset=[C.ITEM])
        if C.CATEGORY in h:
            for i, c in zip(h[C.ITEM].astype(str), h[C.CATEGORY], strict=True):
                kinds_of.setdefault(i, c)
        kinds = ItemKinds.of([kinds_of.get(str(i)) for i in stats.item_ids])
        idx = stats.index_of(h[C.ITEM].astype(str).to_numpy())
        r = (
            pd.to_numeric(h[C.RATING], errors="coerce").to_numpy(dtype=float)
            if C.RATING in h
            else np.full(len(h), np.nan)
        )
        ok = (idx >= 0) & ~np.isnan(r)
        n = np.bincount(idx[ok], minlength=stats.n).astype(float)
        total = np.bincount(idx[ok], weights=r[ok], minlength=stats.n)
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        return FilmCatalog(_years(stats, items, history), kinds.matrix.tocsr(), kinds.names, mean, n)

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> FilmCatalog:
        old: FilmCatalog = part
        k = stats.n - len(old.year)
        if k <= 0:
            return old
        g = sp.vstack([old.genres, sp.csr_matrix((k, old.genres.shape[1]), dtype=np.float32)]).tocsr()
        return FilmCatalog(
            np.concatenate([old.year, np.full(k, np.nan)]),
            g,
            old.genre_names,
            np.concatenate([old.mean_rating, np.full(k, np.nan)]),
            np.concatenate([old.n_ratings, np.zeros(k)]),
        )

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> FilmQuery:
        part: FilmCatalog = stats.parts[FILM]
        aff = np.zeros(len(part.genre_names))
        valid = user.idx >= 0
        items = user.idx[valid]
        rating = user.rating[valid] if user.rating is not None else np.full(len(items), np.nan)
        if len(items):
            centred = np.where(
                np.isnan(rating), 0.0, rating - np.nanmean(rating) if np.isfinite(rating).any() else 0.0
            )
            g = part.genres[items]
            counts = np.asarray(g.sum(axis=0)).ravel()
            aff = np.asarray(g.T @ centred).ravel() / np.maximum(counts + 2.0, 1.0)  # shrunk towards 0
        years = part.year[items] if len(items) else np.array([])
        mean_year = float(np.nanmean(years)) if np.isfinite(years).any() else np.nan
        return FilmQuery(aff, mean_year, 1970.0 + base.when.t_h * 3600 / SECONDS_PER_YEAR)

    def fill(self, f: np.ndarray, col: Columns, stats: CatalogStats, q: Query, rows: np.ndarray) -> None:
        part: FilmCatalog = stats.parts[FILM]
        fq: FilmQuery = q.parts[FILM]
        g = part.genres[rows]
        n_genres = np.maximum(np.asarray(g.sum(axis=1)).ravel(), 1.0)
        f[:, col["genre_affinity"]] = (g @ fq.affinity) / n_genres
        u = q.base.user
        if u is not None and u.n and u.idx[-1] >= 0:
            last = part.genres[int(u.idx[-1])]
            inter = np.asarray((g @ last.T).todense()).ravel()
            f[:, col["genre_match_last"]] = inter / np.maximum(n_genres + last.sum() - inter, 1.0)
        f[:, col["film_age_years"]] = np.nan_to_num(fq.query_year - part.year[rows], nan=30.0)
        f[:, col["year_gap_user"]] = np.nan_to_num(part.year[rows] - fq.mean_year, nan=0.0)
        f[:, col["item_mean_rating"]] = np.nan_to_num(part.mean_rating[rows], nan=0.0)
        f[:, col["item_ratings_log"]] = np.log1p(part.n_ratings[rows])


FILMS_GROUP = FilmGroup()
FILM_STAGE1 = {
    "covis_rank_score": 0.6,
    "global_trans_prob": 1.4,
    "user_knn_rank_score": 0.4,
    "popularity_log": 0.05,
    "recent_popularity_log": 0.1,
}


def _decade(stats: CatalogStats, q: Query, ctx: RequestContext) -> np.ndarray | None:
    decade = ctx.args.get("decade")
    if decade is None:
        return None
    year = stats.parts[FILM].year
    return (year >= decade) & (year < decade + 10)


def _attrs(stats: CatalogStats, i: int, row: Mapping[str, Any]) -> dict[str, Any]:
    year = stats.parts[FILM].year[i]
    return {**row, "year": int(year) if np.isfinite(year) else None}


@cache
def film_plan() -> RetrievalPlan:
    fset = FeatureSet(
        (*BEHAVIOUR.columns, *FilmGroup.columns),
        (BEHAVIOUR, FILMS_GROUP),
        FILM_STAGE1,
        ("user_knn_score", "user_knn_rank_score"),
        "films",
    )
    return RetrievalPlan(
        "films",
        fset,
        NEUTRAL_SOURCES,
        tuple(s.name for s in NEUTRAL_SOURCES),
        shows_consumed=False,
        domain_filter=_decade,
        attrs=_attrs,
        filter_name="decade",
    )
