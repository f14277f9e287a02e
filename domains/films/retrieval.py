"""How films are retrieved and ranked (domains/films/signals.py reads every signal as of the query
time, so one catalog serves a request now and a training pseudo-target in 1999 alike).

Candidates: the union of four named sources (the films people rate after the person's recent ones,
what similar raters rated, what is popular around the query time, the person's genres among last
year's films), each read to its depth; the learned ranker was trained on exactly those pools.
Features: sequence scores in several contexts, similar raters, popularity, genres and years, the
person's own rating habits, and each film's rank in every source. A film already rated is never
shown (the domain's default); the decade filter narrows to one decade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from domains.films.catalog import build_signals, grow_signals, view
from domains.films.signals import FilmSignals, FilmView
from retrieval.behaviour_source import BehaviourEmbeddingGroup, BehaviourSource, kind_tokens
from retrieval.catalog_stats import CatalogStats
from retrieval.features import Columns, FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.query import Query, QueryVectors
from retrieval.sources import PROVENANCE_TOP, CandidateSource
from retrieval.types import RequestContext
from retrieval.user_history import UserHistory

FILM = "film"
SESSION_S = 3600.0


SEQUENCE_CONTEXTS = {  # column -> (films read, position decay, weight of "just before", of "after")
    "seq_l10": (10, 1.0, 0.5, 1.0),
    "seq_l3": (3, 1.0, 0.5, 1.0),
    "seq_l1_after": (1, 1.0, 0.0, 1.0),
    "seq_l1_before": (1, 1.0, 1.0, 0.0),
    "seq_l30": (30, 0.5, 0.5, 1.0),
}
RANKED = {  # rank column -> the whole-catalog score it ranks
    "rank_sequence": "seq_l10",
    "rank_next": "seq_l1_after",
    "rank_similar_raters": "similar_raters",
    "rank_popular_now": "popular_now",
    "rank_genre_taste": "genre_taste",
}


@dataclass
class FilmQuery:
    view: FilmView
    cache: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # said to the person (retrieval.types.RankedList)

    def score(self, name: str) -> np.ndarray:
        """A whole-catalog vector by column name, computed once per query."""
        if name not in self.cache:
            v = self.view
            if name in SEQUENCE_CONTEXTS:
                last, decay, back, fwd = SEQUENCE_CONTEXTS[name]
                self.cache[name] = v.sequence(last, decay, back, fwd)
            elif name in RANKED:
                self.cache[name] = v.rank_among_unrated(self.score(RANKED[name]))
            else:
                self.cache[name] = getattr(v, name)
        return self.cache[name]


class FilmGroup:
    name = FILM
    columns = (
        *SEQUENCE_CONTEXTS,
        "similar_raters",
        *RANKED,
        "sequence_rank_score",
        "similar_rank_score",
        "popular_rank_score",
        "genre_rank_score",
        "popularity_log",
        "popular_now_log",
        "popular_30d_log",
        "popular_365d_log",
        "popularity_trend",
        "item_mean_rating",
        "days_since_first_rating",
        "film_age_years",
        "year_gap_user",
        "year_gap_recent",
        "genre_affinity",
        "genre_match_last",
        "user_ratings_log",
        "user_mean_rating",
        "user_rating_std",
        "user_last_rating",
        "user_gap_log",
        "user_sitting_size",
        "query_year",
    )

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> FilmSignals:
        return build_signals(stats, history, items)

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> FilmSignals:
        """New ratings join the timeline (its pair log is rebuilt: ~1 s for 100k ratings); new
        films get their year and genres from the events' names and kinds."""
        return grow_signals(part, stats, events)

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> FilmQuery:
        sig: FilmSignals = stats.parts[FILM]
        v = view(sig, user, base.when.t_h * 3600.0)
        notes = []
        if args.get("like"):
            film = sig.titles.find(str(args["like"]), v.count)
            if film is None:
                notes.append(
                    f'no film called "{args["like"]}" in this catalog: the list follows your own ratings'
                )
            else:
                v = v.seeded(film)
                notes.append(f"like {sig.titles.titles[film]}: films people rate after it lead the list")
        return FilmQuery(v, {}, notes)

    def fill(self, f: np.ndarray, col: Columns, stats: CatalogStats, q: Query, rows: np.ndarray) -> None:
        fq: FilmQuery = q.parts[FILM]
        v = fq.view
        sig = v.signals
        for name in (*SEQUENCE_CONTEXTS, "similar_raters", *RANKED):
            f[:, col[name]] = fq.score(name)[rows]
        for name, ranked in (
            ("sequence_rank_score", "rank_sequence"),
            ("similar_rank_score", "rank_similar_raters"),
            ("popular_rank_score", "rank_popular_now"),
            ("genre_rank_score", "rank_genre_taste"),
        ):
            f[:, col[name]] = 1.0 / (1.0 + fq.score(ranked)[rows] / 10.0)
        count = v.count[rows]
        w30, w365 = v.window(30)[rows], v.window(365)[rows]
        f[:, col["popularity_log"]] = np.log1p(count)
        f[:, col["popular_now_log"]] = np.log1p(v.popular_now[rows])
        f[:, col["popular_30d_log"]] = np.log1p(w30)
        f[:, col["popular_365d_log"]] = np.log1p(w365)
        f[:, col["popularity_trend"]] = (w30 + 1.0) / (w365 / 12.0 + 1.0)
        n, total, mean = sig.timeline.rating_sums(v.t) if "means" not in fq.cache else fq.cache["means"]
        fq.cache["means"] = (n, total, mean)
        prior = 3.5 if np.isnan(mean) else mean
        f[:, col["item_mean_rating"]] = (total[rows] + 5.0 * prior) / (n[rows] + 5.0)
        first = sig.at("first", v.t)[rows]
        f[:, col["days_since_first_rating"]] = np.where(np.isfinite(first), (v.t - first) / 86400.0, np.nan)
        self._content(f, col, fq, rows)
        self._person(f, col, v)

    @staticmethod
    def _content(f: np.ndarray, col: Columns, fq: FilmQuery, rows: np.ndarray) -> None:
        v = fq.view
        year = v.signals.year[rows]
        f[:, col["film_age_years"]] = v.query_year - year
        mine = v.signals.year[v.items]
        has = np.isfinite(mine)
        f[:, col["year_gap_user"]] = year - np.nanmean(mine) if has.any() else np.nan
        recent = mine[-5:]
        f[:, col["year_gap_recent"]] = (
            np.abs(year - np.nanmean(recent)) if np.isfinite(recent).any() else np.nan
        )
        f[:, col["genre_affinity"]] = v.genre_affinity[rows]
        g = v.signals.genres
        if v.n:
            last = g[int(v.items[-1])]
            inter = np.asarray((g[rows] @ last.T).todense()).ravel()
            sizes = np.asarray(g[rows].sum(axis=1)).ravel()
            f[:, col["genre_match_last"]] = inter / np.maximum(sizes + last.sum() - inter, 1.0)

    @staticmethod
    def _person(f: np.ndarray, col: Columns, v: FilmView) -> None:
        r = v.ratings[~np.isnan(v.ratings)]
        f[:, col["user_ratings_log"]] = np.log1p(v.n)
        f[:, col["user_mean_rating"]] = r.mean() if len(r) else np.nan
        f[:, col["user_rating_std"]] = r.std() if len(r) else np.nan
        f[:, col["user_last_rating"]] = r[-1] if len(r) else np.nan
        f[:, col["user_gap_log"]] = np.log1p(max(v.t - v.times[-1], 0.0)) if v.n else np.nan
        f[:, col["user_sitting_size"]] = float(np.count_nonzero(v.times >= v.t - SESSION_S))
        f[:, col["query_year"]] = v.query_year


@dataclass(frozen=True)
class FilmSource:
    """One named films source: the unrated films with the best ``score``, read to a depth."""

    name: str
    score: str  # the FilmQuery score it ranks by
    rank: str  # its rank column
    stage1: str  # the stage-1 column it covers

    @property
    def covers(self) -> tuple[str, ...]:
        return (self.stage1,)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        fq: FilmQuery = q.parts[FILM]
        ranks = fq.score(self.rank)
        s = fq.score(self.score)
        keep = np.flatnonzero((ranks <= depth) & ~fq.view.had & (s > 0))
        return keep[np.argsort(ranks[keep], kind="stable")]

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        return weights.get(self.stage1, 0.0) / (1.0 + depth / 10.0)

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        return f[:, col[self.rank]] <= PROVENANCE_TOP


FILM_SOURCES: tuple[CandidateSource, ...] = (
    FilmSource("sequence", "seq_l10", "rank_sequence", "sequence_rank_score"),
    FilmSource("similar_raters", "similar_raters", "rank_similar_raters", "similar_rank_score"),
    FilmSource("popular_now", "popular_now", "rank_popular_now", "popular_rank_score"),
    FilmSource("genre_taste", "genre_taste", "rank_genre_taste", "genre_rank_score"),
    BehaviourSource(),
)
FILM_DEPTHS = {
    "sequence": 500,
    "similar_raters": 200,
    "popular_now": 150,
    "genre_taste": 100,
    "behaviour": 200,
}
FILM_GROUP = FilmGroup()
# the hand-weighted blend: orders what no source found and serves as the "heuristic" ranker
FILM_STAGE1 = {
    "sequence_rank_score": 1.0,
    "similar_rank_score": 0.5,
    "popular_rank_score": 0.3,
    "genre_rank_score": 0.2,
    "behav_rank_score": 0.5,
}


def film_tokens(stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> list[list[str]]:
    """A film's genres and its decade."""
    out = kind_tokens(stats, history, items)
    year = stats.parts[FILM].year if FILM in stats.parts else np.full(stats.n, np.nan)
    for i in np.flatnonzero(np.isfinite(year)):
        out[i].append(f"decade:{int(year[i]) // 10 * 10}")
    return out


FILM_BEHAVIOUR = BehaviourEmbeddingGroup(film_tokens, "films")


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
        FilmGroup.columns + FILM_BEHAVIOUR.columns, (FILM_GROUP, FILM_BEHAVIOUR), FILM_STAGE1, (), "films"
    )
    return RetrievalPlan(
        "films",
        fset,
        FILM_SOURCES,
        tuple(FILM_DEPTHS),
        shows_consumed=False,
        domain_filter=_decade,
        attrs=_attrs,
        filter_name="decade",
        default_depths=FILM_DEPTHS,
        union_pool=True,
    )
