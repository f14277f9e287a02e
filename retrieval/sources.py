"""Named candidate sources: where the stage-1 pool comes from, and what each leaves out.

A source returns the items it ranks first for a query, read to a depth, and bounds the stage-1
score (``FeatureSet.stage1``) an item it did *not* return can still get from the features it
covers. ``candidate_pool`` sums those bounds: where the pool's last score is above the sum, the
pool is provably the one scoring the whole catalog gives. A source also says which pool items it
would name as their provenance (the trace's ``sources``).

Sources are listed by name in settings (``retrieval.sources``, as Gorse lists its recommenders),
each with its depth; the domain offers the ones that make sense for its items (``nearby`` needs
locations) and its defaults. Adding one is a class here (or in a domain package) and a name in its
domain's list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval.catalog_stats import CatalogStats
from retrieval.query import Query

PROVENANCE_TOP = 50  # an item counts as "popular" / "collaborative" when in the source's first 50


def rank_score_at(depth: int) -> float:
    """``SparseVector.rank_score`` of the item at position ``depth``: the most an item ranked
    below the depth-th can have."""
    return 1 / (1 + depth / 10)


class CandidateSource(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def covers(self) -> tuple[str, ...]:
        """The stage-1 feature columns its bound speaks for."""
        ...

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray: ...

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        """``rows``: what ``rows`` returned for this query (a source need not find them again)."""
        ...

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Repeat:
    """The person's own items: an item they never had gets 0 from every per-person feature."""

    name: str = "repeat"
    covers: tuple[str, ...] = ("user_count_log", "user_trans_prob", "user_hour_affinity_share")

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        return q.base.items

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        return 0.0

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        return f[:, col["visited_before"]] > 0


@dataclass(frozen=True)
class Markov:
    """Where people go next from the person's latest item (global transitions)."""

    name: str = "markov"
    covers: tuple[str, ...] = ("global_trans_prob",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        return q.base.global_trans.indices

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        return 0.0

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        hit = f[:, col["global_trans_prob"]] > 0
        return hit | (f[:, col["user_trans_any_prob"]] > 0) if "user_trans_any_prob" in col else hit


@dataclass(frozen=True)
class Popular:
    """The most popular items of the training history."""

    name: str = "popular"
    covers: tuple[str, ...] = ("popularity_log",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        return stats.popular_order[:depth]

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        order = stats.popular_order
        pop_k = float(stats.popularity[order[depth - 1]]) if depth <= len(order) else 0.0
        return weights.get("popularity_log", 0.0) * float(np.log1p(pop_k))

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        return np.isin(pool, stats.popular_order[:PROVENANCE_TOP])


@dataclass(frozen=True)
class Collaborative:
    """Items co-visited with the person's items (item-item cosine)."""

    name: str = "collaborative"
    covers: tuple[str, ...] = ("covis_rank_score",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        return q.base.covis.top(depth) if q.base.m else np.zeros(0, dtype=np.int64)

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        return weights.get("covis_rank_score", 0.0) * rank_score_at(depth) if q.base.m else 0.0

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        return np.isin(pool, q.base.covis.top(PROVENANCE_TOP)) & (f[:, col["covis_score"]] > 0)


@dataclass(frozen=True)
class SimilarUsers:
    """What the people most like this person go to (user-based neighbours)."""

    name: str = "similar_users"
    covers: tuple[str, ...] = ("user_knn_rank_score",)

    def rows(self, stats: CatalogStats, q: Query, depth: int) -> np.ndarray:
        knn = q.base.knn
        return knn.top(depth) if q.base.m and knn is not None else np.zeros(0, dtype=np.int64)

    def bound(
        self, stats: CatalogStats, q: Query, depth: int, weights: Mapping[str, float], rows: np.ndarray
    ) -> float:
        if not q.base.m or q.base.knn is None:
            return 0.0
        return weights.get("user_knn_rank_score", 0.0) * rank_score_at(depth)

    def named(
        self, stats: CatalogStats, q: Query, pool: np.ndarray, f: np.ndarray, col: Mapping[str, int]
    ) -> np.ndarray:
        knn = q.base.knn
        if knn is None:
            return np.zeros(len(pool), dtype=bool)
        return np.isin(pool, knn.top(PROVENANCE_TOP)) & (f[:, col["user_knn_score"]] > 0)


NEUTRAL_SOURCES: tuple[CandidateSource, ...] = (
    Repeat(),
    Markov(),
    Popular(),
    Collaborative(),
    SimilarUsers(),
)
# Not a ranked source: items the FAISS index finds for the person's text (retrieval.service), added
# to the pool beyond its stage-1 cut, so it bounds nothing.
EMBEDDING = "embedding"
